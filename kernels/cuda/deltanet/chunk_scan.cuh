// deltanet chunked state pass spread over the sequence (chunk size 64, head dim D in {64,128}).
//
// Per chunk c the state map is affine: S ↦ M_c S + B_c with M_c = I − KᵀW, B_c = KᵀU (K
// normalized, W = TK, U = TV from prep_kernel). A segment of `cps` chunks composes to one
// (M_seg, B_seg) pair, and G = [M | B] (D × 2D) evolves as G ← G − Kᵀ(W G − [0 | U]) from
// [I | 0]; its columns are independent, so:
//   1. seg_sum  (B·H·nseg × 2D/64 blocks): each block composes 64 columns of G over its segment.
//   2. seg_scan (B·H × D/16 blocks): S_{s+1} = M_s S_s + B_s over segments from h0, in fp32;
//               stores S at each segment start and the final state.
//   3. seg_out  (B·H·nseg × D/64 blocks): from the segment's start state, per chunk:
//               V_new = U − W S; O = scale·[Q S + tril(QKᵀ) V_new]; S += Kᵀ V_new; for the
//               backward it stores S_prev per chunk and V_new instead of O.
// The columns of S (V index) are independent in every step, hence the column tiles.
// Math is fp32 FMA with 16×16 threads each owning a register tile of the block's output.
#pragma once

#include <type_traits>

#include "chunk_kernel.cuh"

namespace lak {
namespace deltanet {

constexpr int kSC = 64;   // chunk size of the scan path
constexpr int kCT = 64;   // state columns per block in seg_sum / seg_out
constexpr int kLt = kCT + 4;  // row stride of those column tiles (conflict-free mma B loads)

// Cm[M×N] (=|+=) alpha·op(A)·op(B) (see bgemm), M and N multiples of 16; thread (ty, tx) owns
// rows ty + 16r and columns tx + 16c.
template <int M, int N, bool TA, bool TB>
__device__ __forceinline__ void tgemm(int kk, float alpha, const float* A, int lda,
                                      const float* B, int ldb, float* Cm, int ldc,
                                      bool accumulate) {
  constexpr int RM = M / 16, RN = N / 16;
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  float acc[RM][RN];
#pragma unroll
  for (int r = 0; r < RM; ++r)
#pragma unroll
    for (int c = 0; c < RN; ++c) acc[r][c] = 0.f;
#pragma unroll 4
  for (int l = 0; l < kk; ++l) {
    float av[RM], bv[RN];
#pragma unroll
    for (int r = 0; r < RM; ++r) {
      const int i = ty + 16 * r;
      av[r] = TA ? A[l * lda + i] : A[i * lda + l];
    }
#pragma unroll
    for (int c = 0; c < RN; ++c) {
      const int j = tx + 16 * c;
      bv[c] = TB ? B[j * ldb + l] : B[l * ldb + j];
    }
#pragma unroll
    for (int r = 0; r < RM; ++r)
#pragma unroll
      for (int c = 0; c < RN; ++c) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
  }
#pragma unroll
  for (int r = 0; r < RM; ++r)
#pragma unroll
    for (int c = 0; c < RN; ++c) {
      float* p = Cm + (ty + 16 * r) * ldc + tx + 16 * c;
      *p = accumulate ? fmaf(alpha, acc[r][c], *p) : alpha * acc[r][c];
    }
}

// ---- bf16 tensor-core variant (mma.sync m16n8k16, fp32 accumulate) -------------------------
// Operands stay fp32 in shared memory and are rounded per fragment; a split operand is the
// pair hi = bf16(x), lo = bf16(x − hi) (about 16 mantissa bits), and the product sums the
// hi·hi, hi·lo and lo·hi terms, so chains through the fp32 state keep near-fp32 accuracy.

__device__ __forceinline__ uint32_t pack_bf16(float x, float y) {
  __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&v);
}

// hi and lo bf16x2 of (x, y).
__device__ __forceinline__ void split_bf16(float x, float y, uint32_t& hi, uint32_t& lo) {
  __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
  const float2 hf = __bfloat1622float2(h);
  __nv_bfloat162 l = __floats2bfloat162_rn(x - hf.x, y - hf.y);
  hi = *reinterpret_cast<uint32_t*>(&h);
  lo = *reinterpret_cast<uint32_t*>(&l);
}

__device__ __forceinline__ void mma_bf16(float* c, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Same contract as tgemm (kk a multiple of 16). 8 warps as WM × WN over the 16×8 tiles; each
// warp owns one 16-row strip and NT column tiles. SA / SB: split A / B into hi + lo.
template <int M, int N, bool TA, bool TB, bool SA, bool SB>
__device__ __forceinline__ void mgemm(int kk, float alpha, const float* A, int lda,
                                      const float* B, int ldb, float* Cm, int ldc,
                                      bool accumulate) {
  constexpr int TM = M / 16;
  constexpr int WM = TM < 8 ? TM : 8;
  constexpr int WN = 8 / WM;
  constexpr int NT = (N / 8) / WN;
  static_assert(M % 16 == 0 && N % 8 == 0 && 8 % WM == 0 && (N / 8) % WN == 0, "tiling");
  constexpr int MS = TM / WM;  // 16-row strips per warp
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int wm = warp % WM, wn = warp / WM;
  float acc[MS][NT][4];
#pragma unroll
  for (int ms = 0; ms < MS; ++ms)
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[ms][n][e] = 0.f;
  auto At = [&](int i, int l) { return TA ? A[l * lda + i] : A[i * lda + l]; };
  auto Bt = [&](int l, int j) { return TB ? B[j * ldb + l] : B[l * ldb + j]; };
  for (int kb = 0; kb < kk; kb += 16) {
    uint32_t bh[NT][2], bl[NT][2];
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      const int j = (wn * NT + n) * 8 + g;
      const int l0 = kb + 2 * t, l1 = kb + 2 * t + 8;
      if (SB) {
        split_bf16(Bt(l0, j), Bt(l0 + 1, j), bh[n][0], bl[n][0]);
        split_bf16(Bt(l1, j), Bt(l1 + 1, j), bh[n][1], bl[n][1]);
      } else {
        bh[n][0] = pack_bf16(Bt(l0, j), Bt(l0 + 1, j));
        bh[n][1] = pack_bf16(Bt(l1, j), Bt(l1 + 1, j));
      }
    }
#pragma unroll
    for (int ms = 0; ms < MS; ++ms) {
      const int r0 = (wm + WM * ms) * 16 + g;
      const int l0 = kb + 2 * t, l1 = kb + 2 * t + 8;
      uint32_t ah[4], al[4];
      if (SA) {
        split_bf16(At(r0, l0), At(r0, l0 + 1), ah[0], al[0]);
        split_bf16(At(r0 + 8, l0), At(r0 + 8, l0 + 1), ah[1], al[1]);
        split_bf16(At(r0, l1), At(r0, l1 + 1), ah[2], al[2]);
        split_bf16(At(r0 + 8, l1), At(r0 + 8, l1 + 1), ah[3], al[3]);
      } else {
        ah[0] = pack_bf16(At(r0, l0), At(r0, l0 + 1));
        ah[1] = pack_bf16(At(r0 + 8, l0), At(r0 + 8, l0 + 1));
        ah[2] = pack_bf16(At(r0, l1), At(r0, l1 + 1));
        ah[3] = pack_bf16(At(r0 + 8, l1), At(r0 + 8, l1 + 1));
      }
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        mma_bf16(acc[ms][n], ah, bh[n]);
        if (SB) mma_bf16(acc[ms][n], ah, bl[n]);
        if (SA) mma_bf16(acc[ms][n], al, bh[n]);
      }
    }
  }
#pragma unroll
  for (int ms = 0; ms < MS; ++ms)
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      const int r = (wm + WM * ms) * 16 + g, c = (wn * NT + n) * 8 + 2 * t;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float* p = Cm + (r + (e >> 1) * 8) * ldc + c + (e & 1);
        *p = accumulate ? fmaf(alpha, acc[ms][n][e], *p) : alpha * acc[ms][n][e];
      }
    }
}

// tgemm (fp32 FMA) or, with TC, mgemm. Note the output ownership differs between the two, but
// is fixed for given template arguments, as the accumulate-without-barrier pattern needs.
template <bool TC, int M, int N, bool TA, bool TB, bool SA = true, bool SB = true>
__device__ __forceinline__ void xgemm(int kk, float alpha, const float* A, int lda,
                                      const float* B, int ldb, float* Cm, int ldc,
                                      bool accumulate) {
  if constexpr (TC) {
    mgemm<M, N, TA, TB, SA, SB>(kk, alpha, A, lda, B, ldb, Cm, ldc, accumulate);
  } else {
    tgemm<M, N, TA, TB>(kk, alpha, A, lda, B, ldb, Cm, ldc, accumulate);
  }
}

template <typename T>
struct UseTC {
  static constexpr bool value = false;
};
template <>
struct UseTC<__nv_bfloat16> {
  static constexpr bool value = true;
};

template <int D>
struct ScanSmem {
  static constexpr int kLd = D + 1;
  // seg_sum: G tile D×kLt, K, W: C×kLd, Z: C×kLt
  static constexpr int kSumFloats = D * kLt + 2 * kSC * kLd + kSC * kLt;
  // seg_out: S tile D×kLt, Q, K, W: C×kLd, Vn, O: C×kLt, P: C×(C+1)
  static constexpr int kOutFloats = D * kLt + 3 * kSC * kLd + 2 * kSC * kLt + kSC * (kSC + 1);
  static constexpr size_t kSumBytes = sizeof(float) * kSumFloats;
  static constexpr size_t kOutBytes = sizeof(float) * kOutFloats;
};

struct ScanArgs {
  float* G;     // [B*H][nseg][D][2D] segment summaries [M | B]
  float* Sseg;  // [B*H][nseg][D][D] state at each segment start
  int64_t cps, nseg;
  int store_hs;  // seg_out: store S_prev per chunk into Hs and V_new into U instead of O
};

// N = (I + A)⁻¹ for a strictly lower 64×64 A (stride ld), blocked: the four 16×16 diagonal
// blocks by forward substitution (a thread per column), then block diagonals d = 1..3 as
// N_rc = −N_rr Σ_{c≤m<r} A_rm N_mc. The strictly upper blocks of A are overwritten (scratch for
// the partial sums). All threads of the block must call it; it ends with a barrier.
inline __device__ void unit_lower_inverse64(float* A, float* N, int ld) {
  const int tid = threadIdx.x;
  if (tid < 64) {
    const int j = tid, base = j & ~15;
    for (int i = base; i < base + 16; ++i) {
      float x;
      if (i < j) {
        x = 0.f;
      } else if (i == j) {
        x = 1.f;
      } else {
        float s = 0.f;
        for (int l = j; l < i; ++l) s = fmaf(A[i * ld + l], N[l * ld + j], s);
        x = -s;
      }
      N[i * ld + j] = x;
    }
  }
  for (int idx = tid; idx < 64 * 64; idx += kThreads) {
    const int i = idx >> 6, j = idx & 63;
    if ((i >> 4) < (j >> 4)) N[i * ld + j] = 0.f;
  }
  __syncthreads();
  for (int d = 1; d < 4; ++d) {
    const int nb = 4 - d;
    for (int e = tid; e < nb * 256; e += kThreads) {
      const int c = e >> 8, r = c + d, a = (e >> 4) & 15, bcol = e & 15;
      float s = 0.f;
      for (int l = c * 16; l < r * 16; ++l) {
        s = fmaf(A[(r * 16 + a) * ld + l], N[l * ld + c * 16 + bcol], s);
      }
      A[(c * 16 + a) * ld + r * 16 + bcol] = s;  // Y_rc, kept in the upper block (c, r)
    }
    __syncthreads();
    for (int e = tid; e < nb * 256; e += kThreads) {
      const int c = e >> 8, r = c + d, a = (e >> 4) & 15, bcol = e & 15;
      float s = 0.f;
      for (int l = 0; l <= a; ++l) {
        s = fmaf(N[(r * 16 + a) * ld + r * 16 + l], A[(c * 16 + l) * ld + r * 16 + bcol], s);
      }
      N[(r * 16 + a) * ld + c * 16 + bcol] = -s;
    }
    __syncthreads();
  }
}

// 0. prep_kernel for chunk size 64 with register-tiled / tensor-core products.
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) prep_fast_kernel(Args a) {
  constexpr bool TC = UseTC<T>::value;
  constexpr int C = kSC, ld = D + 1, ldc = C + 1;
  extern __shared__ float sm[];
  float* sK = sm;
  float* sV = sK + C * ld;
  float* sA = sV + C * ld;
  float* sN = sA + C * ldc;
  float* sb = sN + C * ldc;
  const int64_t ch = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H, t0 = ch * C;
  load_rows<T>(sK, ld, a.k, b, h, t0, 0, D, a, a.l2 != 0, nullptr);
  load_rows<T>(sV, ld, a.v, b, h, t0, 0, D, a, false, nullptr);
  load_beta<T>(sb, a, b, h, t0);
  __syncthreads();
  xgemm<TC, C, C, false, true>(D, 1.f, sK, ld, sK, ld, sA, ldc, false);
  __syncthreads();
  for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
    const int i = idx / C, j = idx - i * C;
    sA[i * ldc + j] = j < i ? sb[i] * sA[i * ldc + j] : 0.f;
  }
  __syncthreads();
  unit_lower_inverse64(sA, sN, ldc);
  for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
    const int i = idx / C, j = idx - i * C;
    sN[i * ldc + j] *= sb[j];
  }
  __syncthreads();
  const int64_t off = (bh * a.NC + ch) * static_cast<int64_t>(C) * D;
  xgemm<TC, C, D, false, false>(C, 1.f, sN, ldc, sK, ld, a.W + off, D, false);
  xgemm<TC, C, D, false, false, true, !std::is_same<T, __nv_bfloat16>::value>(
      C, 1.f, sN, ldc, sV, ld, a.U + off, D, false);
}

// 1. Column tile blockIdx.y of G = [M | B] composed over the segment's chunks.
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) seg_sum_kernel(Args a, ScanArgs s) {
  constexpr int C = kSC, ld = D + 1;
  constexpr bool TC = UseTC<T>::value;
  extern __shared__ float sm[];
  float* sG = sm;               // D × kLt
  float* sK = sG + D * kLt;     // C × ld
  float* sW = sK + C * ld;      // C × ld
  float* sZ = sW + C * ld;      // C × kLt
  const int64_t bh = blockIdx.x / s.nseg, seg = blockIdx.x % s.nseg;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int c0 = blockIdx.y * kCT;      // column of G
  const bool bpart = c0 >= D;          // tile of B (else of M)
  for (int idx = threadIdx.x; idx < D * kCT; idx += kThreads) {
    const int i = idx / kCT, j = idx % kCT;
    sG[i * kLt + j] = (!bpart && i == c0 + j) ? 1.f : 0.f;
  }
  const int64_t ch0 = seg * s.cps;
  const int64_t ch1 = ch0 + s.cps < a.NC ? ch0 + s.cps : a.NC;
  for (int64_t ch = ch0; ch < ch1; ++ch) {
    const int64_t off = (bh * a.NC + ch) * static_cast<int64_t>(C) * D;
    load_rows<T>(sK, ld, a.k, b, h, ch * C, 0, D, a, a.l2 != 0, nullptr);
    copy_mat(sW, ld, a.W + off, D, C, D);
    if (bpart) {
      const float* u = a.U + off + (c0 - D);
      for (int idx = threadIdx.x; idx < C * kCT; idx += kThreads) {
        const int i = idx / kCT, j = idx % kCT;
        sZ[i * kLt + j] = -u[static_cast<int64_t>(i) * D + j];
      }
    }
    __syncthreads();
    // Z = W G_tile (− U_tile)
    xgemm<TC, C, kCT, false, false>(D, 1.f, sW, ld, sG, kLt, sZ, kLt, bpart);
    __syncthreads();
    // G_tile −= Kᵀ Z
    xgemm<TC, D, kCT, true, false>(C, -1.f, sK, ld, sZ, kLt, sG, kLt, true);
    __syncthreads();
  }
  float* g = s.G + (bh * s.nseg + seg) * static_cast<int64_t>(D) * (2 * D) + c0;
  for (int idx = threadIdx.x; idx < D * kCT; idx += kThreads) {
    const int i = idx / kCT, j = idx % kCT;
    g[static_cast<int64_t>(i) * (2 * D) + j] = sG[i * kLt + j];
  }
}

// 2. S over segments for columns [16·blockIdx.y, +16): S_{s+1} = M_s S_s + B_s.
template <int D>
__global__ void __launch_bounds__(kThreads) seg_scan_kernel(Args a, ScanArgs s) {
  constexpr int ld = D + 1;
  extern __shared__ float sm[];
  float* sS = sm;              // D × kVT
  float* sN = sS + D * kVT;    // D × kVT (next)
  float* sM = sN + D * kVT;    // D × ld
  const int64_t bh = blockIdx.x;
  const int v0 = blockIdx.y * kVT;
  const int64_t DD = static_cast<int64_t>(D) * D;
  for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) {
    const int i = idx / kVT, j = idx % kVT;
    sS[idx] = a.h0 != nullptr ? a.h0[bh * DD + static_cast<int64_t>(i) * D + v0 + j] : 0.f;
  }
  for (int64_t seg = 0; seg < s.nseg; ++seg) {
    __syncthreads();
    float* ss = s.Sseg + (bh * s.nseg + seg) * DD + v0;
    for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) {
      const int i = idx / kVT, j = idx % kVT;
      ss[static_cast<int64_t>(i) * D + j] = sS[idx];
    }
    const float* g = s.G + (bh * s.nseg + seg) * DD * 2;
    copy_mat(sM, ld, g, 2 * D, D, D);
    copy_mat(sN, kVT, g + D + v0, 2 * D, D, kVT);
    __syncthreads();
    tgemm<D, kVT, false, false>(D, 1.f, sM, ld, sS, kVT, sN, kVT, true);
    __syncthreads();
    for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) sS[idx] = sN[idx];
  }
  __syncthreads();
  if (a.final_state != nullptr) {
    for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) {
      const int i = idx / kVT, j = idx % kVT;
      a.final_state[bh * DD + static_cast<int64_t>(i) * D + v0 + j] = sS[idx];
    }
  }
}

// 3. Outputs (or S_prev and V_new) of the segment's chunks for state columns [c0, c0+kCT).
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) seg_out_kernel(Args a, ScanArgs s) {
  constexpr int C = kSC, ld = D + 1, ldc = C + 1;
  constexpr bool TC = UseTC<T>::value;
  extern __shared__ float sm[];
  float* sS = sm;               // D × kLt
  float* sQ = sS + D * kLt;     // C × ld
  float* sK = sQ + C * ld;      // C × ld
  float* sW = sK + C * ld;      // C × ld
  float* sVn = sW + C * ld;     // C × kLt
  float* sO = sVn + C * kLt;    // C × kLt
  float* sP = sO + C * kLt;     // C × ldc
  const int64_t bh = blockIdx.x / s.nseg, seg = blockIdx.x % s.nseg;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int c0 = blockIdx.y * kCT;
  const int64_t DD = static_cast<int64_t>(D) * D;
  copy_mat(sS, kLt, s.Sseg + (bh * s.nseg + seg) * DD + c0, D, D, kCT);
  const int64_t ch0 = seg * s.cps;
  const int64_t ch1 = ch0 + s.cps < a.NC ? ch0 + s.cps : a.NC;
  for (int64_t ch = ch0; ch < ch1; ++ch) {
    const int64_t t0 = ch * C;
    const int64_t off = (bh * a.NC + ch) * static_cast<int64_t>(C) * D;
    __syncthreads();
    if (s.store_hs) {
      float* hs = a.Hs + (bh * a.NC + ch) * DD + c0;
      for (int idx = threadIdx.x; idx < D * kCT; idx += kThreads) {
        const int i = idx / kCT, j = idx % kCT;
        hs[static_cast<int64_t>(i) * D + j] = sS[i * kLt + j];
      }
    } else {
      load_rows<T>(sQ, ld, a.q, b, h, t0, 0, D, a, a.l2 != 0, nullptr);
    }
    load_rows<T>(sK, ld, a.k, b, h, t0, 0, D, a, a.l2 != 0, nullptr);
    copy_mat(sW, ld, a.W + off, D, C, D);
    copy_mat(sVn, kLt, a.U + off + c0, D, C, kCT);
    __syncthreads();
    if (!s.store_hs) {
      xgemm<TC, C, C, false, true>(D, 1.f, sQ, ld, sK, ld, sP, ldc, false);
      xgemm<TC, C, kCT, false, false>(D, a.scale, sQ, ld, sS, kLt, sO, kLt, false);
    }
    // V_new = U − W S
    xgemm<TC, C, kCT, false, false>(D, -1.f, sW, ld, sS, kLt, sVn, kLt, true);
    __syncthreads();
    if (s.store_hs) {
      copy_mat(a.U + off + c0, D, sVn, kLt, C, kCT);
    } else {
      mask_tril(sP, ldc, C, true);
      __syncthreads();
      xgemm<TC, C, kCT, false, false>(C, a.scale, sP, ldc, sVn, kLt, sO, kLt, true);
    }
    // S += Kᵀ V_new (reads sK, sVn; writes sS, which no one else reads until the next barrier)
    xgemm<TC, D, kCT, true, false>(C, 1.f, sK, ld, sVn, kLt, sS, kLt, true);
    if (!s.store_hs) {
      __syncthreads();
      const int c = static_cast<int>(a.T - t0 < C ? a.T - t0 : C);
      for (int idx = threadIdx.x; idx < c * kCT; idx += kThreads) {
        const int i = idx / kCT, j = idx % kCT;
        Io<T>::store(a.o, ((b * a.T + t0 + i) * a.H + h) * D + c0 + j, sO[i * kLt + j]);
      }
    }
  }
}

// ---- backward: the reverse recurrence of dS over segments ----------------------------------
// dS_prev = (I − WᵀK) dS + scale·(Qᵀ dO − Wᵀ Pᵀ dO), P = tril(QKᵀ): affine again, composed in
// reverse chunk order as G' ← G' − Wᵀ(K G' + [0 | scale·Pᵀ dO]) + [0 | scale·Qᵀ dO] from [I | 0].
// bseg_kernel with store_hs = 0 composes column tile blockIdx.y of G' (2D/64 tiles); with
// store_hs = 1 it walks the segment from dS at its end (Sseg) over tile blockIdx.y of dS (D/64
// tiles) and stores dS after every chunk (dHs). Between them, bscan_kernel.
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) bseg_kernel(Args a, ScanArgs s) {
  constexpr bool TC = UseTC<T>::value;
  constexpr int C = kSC, ld = D + 1, ldc = C + 1;
  extern __shared__ float sm[];
  float* sG = sm;              // D × kLt
  float* sQ = sG + D * kLt;    // C × ld
  float* sK = sQ + C * ld;     // C × ld
  float* sW = sK + C * ld;     // C × ld
  float* sdO = sW + C * ld;    // C × kLt
  float* sZ = sdO + C * kLt;   // C × kLt
  float* sP = sZ + C * kLt;    // C × ldc
  const int64_t bh = blockIdx.x / s.nseg, seg = blockIdx.x % s.nseg;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t DD = static_cast<int64_t>(D) * D;
  const bool walk = s.store_hs != 0;
  const int c0 = blockIdx.y * kCT;           // column of G' (sum) or of dS (walk)
  const bool bpart = walk || c0 >= D;
  const int v0 = walk ? c0 : c0 - D;         // column of dO / dS for the B part
  if (walk) {
    copy_mat(sG, kLt, s.Sseg + (bh * s.nseg + seg) * DD + c0, D, D, kCT);
  } else {
    for (int idx = threadIdx.x; idx < D * kCT; idx += kThreads) {
      const int i = idx / kCT, j = idx % kCT;
      sG[i * kLt + j] = (!bpart && i == c0 + j) ? 1.f : 0.f;
    }
  }
  const int64_t ch0 = seg * s.cps;
  const int64_t ch1 = ch0 + s.cps < a.NC ? ch0 + s.cps : a.NC;
  for (int64_t ch = ch1 - 1; ch >= ch0; --ch) {
    const int64_t t0 = ch * C;
    const int64_t off = (bh * a.NC + ch) * static_cast<int64_t>(C) * D;
    __syncthreads();
    if (walk) {
      float* hs = a.dHs + (bh * a.NC + ch) * DD + c0;
      for (int idx = threadIdx.x; idx < D * kCT; idx += kThreads) {
        const int i = idx / kCT, j = idx % kCT;
        hs[static_cast<int64_t>(i) * D + j] = sG[i * kLt + j];
      }
    }
    load_rows<T>(sK, ld, a.k, b, h, t0, 0, D, a, a.l2 != 0, nullptr);
    copy_mat(sW, ld, a.W + off, D, C, D);
    if (bpart) {
      load_rows<T>(sQ, ld, a.q, b, h, t0, 0, D, a, a.l2 != 0, nullptr);
      load_rows<T>(sdO, kLt, a.do_, b, h, t0, v0, kCT, a, false, nullptr);
    }
    __syncthreads();
    if (bpart) {
      xgemm<TC, C, C, false, true>(D, 1.f, sQ, ld, sK, ld, sP, ldc, false);
      __syncthreads();
      mask_tril(sP, ldc, C, true);
      __syncthreads();
      xgemm<TC, C, kCT, true, false>(C, a.scale, sP, ldc, sdO, kLt, sZ, kLt, false);
    }
    // Z (+)= K G'
    xgemm<TC, C, kCT, false, false>(D, 1.f, sK, ld, sG, kLt, sZ, kLt, bpart);
    __syncthreads();
    // G' −= Wᵀ Z (+ scale·Qᵀ dO)
    xgemm<TC, D, kCT, true, false>(C, -1.f, sW, ld, sZ, kLt, sG, kLt, true);
    if (bpart) xgemm<TC, D, kCT, true, false>(C, a.scale, sQ, ld, sdO, kLt, sG, kLt, true);
  }
  __syncthreads();
  if (!walk) {
    float* g = s.G + (bh * s.nseg + seg) * DD * 2 + c0;
    for (int idx = threadIdx.x; idx < D * kCT; idx += kThreads) {
      const int i = idx / kCT, j = idx % kCT;
      g[static_cast<int64_t>(i) * (2 * D) + j] = sG[i * kLt + j];
    }
  }
}

// dS at the end of each segment, from 0 after the last; dh0 = dS before the first chunk.
template <int D>
__global__ void __launch_bounds__(kThreads) bscan_kernel(Args a, ScanArgs s) {
  constexpr int ld = D + 1;
  extern __shared__ float sm[];
  float* sS = sm;              // D × kVT
  float* sN = sS + D * kVT;    // D × kVT
  float* sM = sN + D * kVT;    // D × ld
  const int64_t bh = blockIdx.x;
  const int v0 = blockIdx.y * kVT;
  const int64_t DD = static_cast<int64_t>(D) * D;
  for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) sS[idx] = 0.f;
  for (int64_t seg = s.nseg - 1; seg >= 0; --seg) {
    __syncthreads();
    float* ss = s.Sseg + (bh * s.nseg + seg) * DD + v0;
    for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) {
      const int i = idx / kVT, j = idx % kVT;
      ss[static_cast<int64_t>(i) * D + j] = sS[idx];
    }
    const float* g = s.G + (bh * s.nseg + seg) * DD * 2;
    copy_mat(sM, ld, g, 2 * D, D, D);
    copy_mat(sN, kVT, g + D + v0, 2 * D, D, kVT);
    __syncthreads();
    tgemm<D, kVT, false, false>(D, 1.f, sM, ld, sS, kVT, sN, kVT, true);
    __syncthreads();
    for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) sS[idx] = sN[idx];
  }
  __syncthreads();
  if (a.dh0 != nullptr) {
    for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) {
      const int i = idx / kVT, j = idx % kVT;
      a.dh0[bh * DD + static_cast<int64_t>(i) * D + v0 + j] = sS[idx];
    }
  }
}

template <int D>
struct BScanSmem {
  static constexpr int kFloats = D * kLt + 3 * kSC * (D + 1) + 2 * kSC * kLt + kSC * (kSC + 1);
  static constexpr size_t kBytes = sizeof(float) * kFloats;
};

}  // namespace deltanet
}  // namespace lak
