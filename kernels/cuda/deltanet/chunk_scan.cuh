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

#include "chunk_kernel.cuh"

namespace lak {
namespace deltanet {

constexpr int kSC = 64;   // chunk size of the scan path
constexpr int kCT = 64;   // state columns per block in seg_sum / seg_out

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

template <int D>
struct ScanSmem {
  static constexpr int kLd = D + 1;
  // seg_sum: G tile D×kCT, K, W: C×kLd, Z: C×kCT
  static constexpr int kSumFloats = D * kCT + 2 * kSC * kLd + kSC * kCT;
  // seg_out: S tile D×kCT, Q, K, W: C×kLd, Vn, O: C×kCT, P: C×(C+1)
  static constexpr int kOutFloats = D * kCT + 3 * kSC * kLd + 2 * kSC * kCT + kSC * (kSC + 1);
  static constexpr size_t kSumBytes = sizeof(float) * kSumFloats;
  static constexpr size_t kOutBytes = sizeof(float) * kOutFloats;
};

struct ScanArgs {
  float* G;     // [B*H][nseg][D][2D] segment summaries [M | B]
  float* Sseg;  // [B*H][nseg][D][D] state at each segment start
  int64_t cps, nseg;
  int store_hs;  // seg_out: store S_prev per chunk into Hs and V_new into U instead of O
};

// 1. Column tile blockIdx.y of G = [M | B] composed over the segment's chunks.
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) seg_sum_kernel(Args a, ScanArgs s) {
  constexpr int C = kSC, ld = D + 1;
  extern __shared__ float sm[];
  float* sG = sm;               // D × kCT
  float* sK = sG + D * kCT;     // C × ld
  float* sW = sK + C * ld;      // C × ld
  float* sZ = sW + C * ld;      // C × kCT
  const int64_t bh = blockIdx.x / s.nseg, seg = blockIdx.x % s.nseg;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int c0 = blockIdx.y * kCT;      // column of G
  const bool bpart = c0 >= D;          // tile of B (else of M)
  for (int idx = threadIdx.x; idx < D * kCT; idx += kThreads) {
    const int i = idx / kCT, j = idx % kCT;
    sG[idx] = (!bpart && i == c0 + j) ? 1.f : 0.f;
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
        sZ[idx] = -u[static_cast<int64_t>(i) * D + j];
      }
    }
    __syncthreads();
    // Z = W G_tile (− U_tile)
    tgemm<C, kCT, false, false>(D, 1.f, sW, ld, sG, kCT, sZ, kCT, bpart);
    __syncthreads();
    // G_tile −= Kᵀ Z
    tgemm<D, kCT, true, false>(C, -1.f, sK, ld, sZ, kCT, sG, kCT, true);
    __syncthreads();
  }
  float* g = s.G + (bh * s.nseg + seg) * static_cast<int64_t>(D) * (2 * D) + c0;
  for (int idx = threadIdx.x; idx < D * kCT; idx += kThreads) {
    const int i = idx / kCT, j = idx % kCT;
    g[static_cast<int64_t>(i) * (2 * D) + j] = sG[idx];
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
  extern __shared__ float sm[];
  float* sS = sm;               // D × kCT
  float* sQ = sS + D * kCT;     // C × ld
  float* sK = sQ + C * ld;      // C × ld
  float* sW = sK + C * ld;      // C × ld
  float* sVn = sW + C * ld;     // C × kCT
  float* sO = sVn + C * kCT;    // C × kCT
  float* sP = sO + C * kCT;     // C × ldc
  const int64_t bh = blockIdx.x / s.nseg, seg = blockIdx.x % s.nseg;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int c0 = blockIdx.y * kCT;
  const int64_t DD = static_cast<int64_t>(D) * D;
  copy_mat(sS, kCT, s.Sseg + (bh * s.nseg + seg) * DD + c0, D, D, kCT);
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
        hs[static_cast<int64_t>(i) * D + j] = sS[idx];
      }
    } else {
      load_rows<T>(sQ, ld, a.q, b, h, t0, 0, D, a, a.l2 != 0, nullptr);
    }
    load_rows<T>(sK, ld, a.k, b, h, t0, 0, D, a, a.l2 != 0, nullptr);
    copy_mat(sW, ld, a.W + off, D, C, D);
    copy_mat(sVn, kCT, a.U + off + c0, D, C, kCT);
    __syncthreads();
    if (!s.store_hs) {
      tgemm<C, C, false, true>(D, 1.f, sQ, ld, sK, ld, sP, ldc, false);
      tgemm<C, kCT, false, false>(D, a.scale, sQ, ld, sS, kCT, sO, kCT, false);
    }
    // V_new = U − W S
    tgemm<C, kCT, false, false>(D, -1.f, sW, ld, sS, kCT, sVn, kCT, true);
    __syncthreads();
    if (s.store_hs) {
      copy_mat(a.U + off + c0, D, sVn, kCT, C, kCT);
    } else {
      mask_tril(sP, ldc, C, true);
      __syncthreads();
      tgemm<C, kCT, false, false>(C, a.scale, sP, ldc, sVn, kCT, sO, kCT, true);
    }
    // S += Kᵀ V_new (reads sK, sVn; writes sS, which no one else reads until the next barrier)
    tgemm<D, kCT, true, false>(C, 1.f, sK, ld, sVn, kCT, sS, kCT, true);
    if (!s.store_hs) {
      __syncthreads();
      const int c = static_cast<int>(a.T - t0 < C ? a.T - t0 : C);
      for (int idx = threadIdx.x; idx < c * kCT; idx += kThreads) {
        const int i = idx / kCT, j = idx % kCT;
        Io<T>::store(a.o, ((b * a.T + t0 + i) * a.H + h) * D + c0 + j, sO[i * kCT + j]);
      }
    }
  }
}

}  // namespace deltanet
}  // namespace lak
