// Tensor-core (mma.sync m16n8k16 bf16 → fp32) forward of the attention core, bf16, M = 0.
//
// A block owns kBr queries of one segment, 4 warps of 16·kRW rows each; key/value tiles of 64
// rows stream through a two-stage cp.async pipeline. S = QKᵀ and O += PV run on tensor cores
// with fp32 accumulators; the online softmax (log2 domain) works on the accumulator fragments
// in registers (each row lives in one quad of lanes), and P is repacked to bf16 A fragments
// without a trip through shared memory. V's B fragments come from ldmatrix.trans.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "flash.h"

namespace lak {
namespace attn {

template <int D>
struct MmaFwd {
  static constexpr int kRW = D == 64 ? 2 : 1;  // m16 row blocks per warp
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBr = 16 * kRW * kWarps;
  static constexpr int kBc = 64;
  static constexpr int kLd = D + 8;  // bf16 elements per smem row (16 B pad: conflict-free)
  static constexpr size_t kSmemBytes = static_cast<size_t>(kBr + 4 * kBc) * kLd * 2;
};

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void mma_bf16(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Rows [t, t+n) of a [B,T,H,D] bf16 tensor for (b,h) into `rows` smem rows (stride kLd),
// zero-filled past n, asynchronously.
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void cp_rows(__nv_bfloat16* s, const void* g, const Problem& p,
                                        int64_t b, int64_t h, int64_t t, int n) {
  constexpr int kChunks = D / 8, LD = D + 8;
  const __nv_bfloat16* base = static_cast<const __nv_bfloat16*>(g);
  for (int idx = threadIdx.x; idx < ROWS * kChunks; idx += THREADS) {
    const int r = idx / kChunks, c = (idx % kChunks) * 8;
    const bool ok = r < n;
    const __nv_bfloat16* src = ok ? base + ((b * p.T + t + r) * p.H + h) * D + c : base;
    cp_async16(s + r * LD + c, src, ok);
  }
}

// rmt: the M ≤ 64 fp32 memory rows of segment s as bf16 rows 0 … ROWS-1 (zero past M).
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void mem_rows(__nv_bfloat16* s, const Problem& p, int64_t bh,
                                         int64_t seg) {
  constexpr int LD = D + 8;
  const float* mp = p.mems + (bh * (p.nseg + 1) + seg) * p.M * D;
  for (int idx = threadIdx.x; idx < ROWS * D / 2; idx += THREADS) {
    const int r = idx / (D / 2), c = (idx % (D / 2)) * 2;
    const float2 x = r < p.M ? *reinterpret_cast<const float2*>(mp + r * D + c) : make_float2(0.f, 0.f);
    *reinterpret_cast<__nv_bfloat162*>(s + r * LD + c) = __floats2bfloat162_rn(x.x, x.y);
  }
}

// grid (nseg · query tiles per segment, B·H), MmaFwd<D>::kThreads threads. With M > 0 (rmt)
// a leading key tile holds the segment's memory rows, visible to every query.
template <int D>
__global__ void __launch_bounds__(MmaFwd<D>::kThreads) fwd_mma(Problem p, int64_t qtiles) {
  using F = MmaFwd<D>;
  constexpr int RW = F::kRW, LD = F::kLd, Br = F::kBr, Bc = F::kBc, KD = D / 16, ND = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* Ks = Qs + Br * LD;  // 2 stages
  __nv_bfloat16* Vs = Ks + 2 * Bc * LD;

  const int64_t bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int64_t s = blockIdx.x / qtiles;
  const int64_t t0 = s * p.L;
  const int n = static_cast<int>(p.T - t0 < p.L ? p.T - t0 : p.L);
  // the longest rows first: causal blocks late in the segment have the most key tiles
  const int q0 = static_cast<int>(qtiles - 1 - blockIdx.x % qtiles) * Br;
  if (q0 >= n) return;
  const int nq = min(Br, n - q0);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int wrow0 = q0 + warp * 16 * RW;  // segment-local first row of this warp
  const float sl2 = p.scale * 1.4426950408889634f;
  const int lead = p.M > 0 ? 1 : 0;
  const int nkt = lead + (q0 + nq - 1) / Bc + 1;

  cp_rows<D, Br, F::kThreads>(Qs, p.q, p, b, h, t0 + q0, nq);
  if (lead) {
    mem_rows<D, Bc, F::kThreads>(Ks, p, bh, s);
    mem_rows<D, Bc, F::kThreads>(Vs, p, bh, s);
  } else {
    cp_rows<D, Bc, F::kThreads>(Ks, p.k, p, b, h, t0, min(Bc, n));
    cp_rows<D, Bc, F::kThreads>(Vs, p.v, p, b, h, t0, min(Bc, n));
  }
  cp_async_commit();

  uint32_t qf[RW][KD][4];
  float o[RW][ND][4];
  float m[RW][2], l[RW][2];
#pragma unroll
  for (int rw = 0; rw < RW; rw++) {
#pragma unroll
    for (int j = 0; j < ND; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) o[rw][j][e] = 0.f;
    m[rw][0] = m[rw][1] = -INFINITY;
    l[rw][0] = l[rw][1] = 0.f;
  }

  for (int kt = 0; kt < nkt; kt++) {
    const int st = kt & 1;
    if (kt + 1 < nkt) {
      const int k1 = (kt + 1 - lead) * Bc;
      cp_rows<D, Bc, F::kThreads>(Ks + (st ^ 1) * Bc * LD, p.k, p, b, h, t0 + k1,
                                  min(Bc, n - k1));
      cp_rows<D, Bc, F::kThreads>(Vs + (st ^ 1) * Bc * LD, p.v, p, b, h, t0 + k1,
                                  min(Bc, n - k1));
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (kt == 0) {
#pragma unroll
      for (int rw = 0; rw < RW; rw++) {
        const __nv_bfloat16* qr = Qs + (warp * 16 * RW + rw * 16 + g) * LD + 2 * t4;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
          qf[rw][kk][0] = *reinterpret_cast<const uint32_t*>(qr + kk * 16);
          qf[rw][kk][1] = *reinterpret_cast<const uint32_t*>(qr + 8 * LD + kk * 16);
          qf[rw][kk][2] = *reinterpret_cast<const uint32_t*>(qr + kk * 16 + 8);
          qf[rw][kk][3] = *reinterpret_cast<const uint32_t*>(qr + 8 * LD + kk * 16 + 8);
        }
      }
    }
    const bool memt = kt < lead;
    const int k0 = (kt - lead) * Bc;
    if (memt || k0 <= wrow0 + 16 * RW - 1) {  // else every key is in this warp's future
      const __nv_bfloat16* Kt = Ks + st * Bc * LD;
      const __nv_bfloat16* Vt = Vs + st * Bc * LD;
      float sc[RW][8][4];
#pragma unroll
      for (int rw = 0; rw < RW; rw++)
#pragma unroll
        for (int nb = 0; nb < 8; nb++)
#pragma unroll
          for (int e = 0; e < 4; e++) sc[rw][nb][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD; kk++) {
#pragma unroll
        for (int nb = 0; nb < 8; nb++) {
          const __nv_bfloat16* kr = Kt + (nb * 8 + g) * LD + kk * 16 + 2 * t4;
          const uint32_t b0 = *reinterpret_cast<const uint32_t*>(kr);
          const uint32_t b1 = *reinterpret_cast<const uint32_t*>(kr + 8);
#pragma unroll
          for (int rw = 0; rw < RW; rw++) mma_bf16(sc[rw][nb], qf[rw][kk], b0, b1);
        }
      }
      const bool diag = !memt && k0 + Bc - 1 > wrow0;
      uint32_t pf[RW][4][4];
#pragma unroll
      for (int rw = 0; rw < RW; rw++) {
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
          const int row = wrow0 + rw * 16 + g + 8 * hf;
          float mx = -INFINITY;
#pragma unroll
          for (int nb = 0; nb < 8; nb++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
              float x = sc[rw][nb][2 * hf + e] * sl2;
              if (diag && k0 + nb * 8 + 2 * t4 + e > row) x = -INFINITY;
              if (memt && nb * 8 + 2 * t4 + e >= p.M) x = -INFINITY;
              sc[rw][nb][2 * hf + e] = x;
              mx = fmaxf(mx, x);
            }
          }
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          const float mn = fmaxf(m[rw][hf], mx);
          const float alpha = exp2f(m[rw][hf] - mn);  // m = -inf on the first tile: 0
          float sum = 0.f;
#pragma unroll
          for (int nb = 0; nb < 8; nb++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
              const float pe = exp2f(sc[rw][nb][2 * hf + e] - mn);
              sc[rw][nb][2 * hf + e] = pe;
              sum += pe;
            }
          }
          sum += __shfl_xor_sync(0xffffffffu, sum, 1);
          sum += __shfl_xor_sync(0xffffffffu, sum, 2);
          l[rw][hf] = alpha * l[rw][hf] + sum;
          m[rw][hf] = mn;
#pragma unroll
          for (int j = 0; j < ND; j++) {
            o[rw][j][2 * hf] *= alpha;
            o[rw][j][2 * hf + 1] *= alpha;
          }
        }
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
          pf[rw][kk][0] = pack_bf16(sc[rw][2 * kk][0], sc[rw][2 * kk][1]);
          pf[rw][kk][1] = pack_bf16(sc[rw][2 * kk][2], sc[rw][2 * kk][3]);
          pf[rw][kk][2] = pack_bf16(sc[rw][2 * kk + 1][0], sc[rw][2 * kk + 1][1]);
          pf[rw][kk][3] = pack_bf16(sc[rw][2 * kk + 1][2], sc[rw][2 * kk + 1][3]);
        }
      }
      const int mat = lane >> 3, r8 = lane & 7;
#pragma unroll
      for (int kk = 0; kk < 4; kk++) {
#pragma unroll
        for (int dp = 0; dp < D / 16; dp++) {
          uint32_t vb[4];
          ldmatrix_x4_trans(vb, Vt + (kk * 16 + (mat & 1) * 8 + r8) * LD + dp * 16 + (mat >> 1) * 8);
#pragma unroll
          for (int rw = 0; rw < RW; rw++) {
            mma_bf16(o[rw][2 * dp], pf[rw][kk], vb[0], vb[1]);
            mma_bf16(o[rw][2 * dp + 1], pf[rw][kk], vb[2], vb[3]);
          }
        }
      }
    }
    __syncthreads();
  }

  __nv_bfloat16* out = static_cast<__nv_bfloat16*>(p.o);
  const __nv_bfloat16* dout = static_cast<const __nv_bfloat16*>(p.do_);
#pragma unroll
  for (int rw = 0; rw < RW; rw++) {
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
      const int r = wrow0 - q0 + rw * 16 + g + 8 * hf;
      const bool ok = r < nq;
      const int64_t t = t0 + q0 + r;
      const float inv = 1.f / l[rw][hf];
      const int64_t row = ((b * p.T + t) * p.H + h) * D;
      float dsum = 0.f;
#pragma unroll
      for (int j = 0; j < ND; j++) {
        const float x0 = o[rw][j][2 * hf] * inv, x1 = o[rw][j][2 * hf + 1] * inv;
        const int64_t idx = row + j * 8 + 2 * t4;
        if (ok && out) {
          *reinterpret_cast<__nv_bfloat162*>(out + idx) = __floats2bfloat162_rn(x0, x1);
        }
        if (ok && dout) {
          const __nv_bfloat162 dd = *reinterpret_cast<const __nv_bfloat162*>(dout + idx);
          dsum += x0 * __low2float(dd) + x1 * __high2float(dd);
        }
      }
      dsum += __shfl_xor_sync(0xffffffffu, dsum, 1);
      dsum += __shfl_xor_sync(0xffffffffu, dsum, 2);
      if (ok && t4 == 0) {
        p.lse[bh * p.T + t] = m[rw][hf] + log2f(l[rw][hf]);
        if (dout) p.di[bh * p.T + t] = dsum;
      }
    }
  }
}

}  // namespace attn
}  // namespace lak

namespace lak {
namespace attn {

__device__ __forceinline__ uint32_t ld32(const __nv_bfloat16* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

// A fragment (16×16, row-major source) at rows r0…r0+15, cols c0…c0+15 of an smem matrix.
__device__ __forceinline__ void frag_a(uint32_t* a, const __nv_bfloat16* s, int ld, int r0, int c0,
                                       int g, int t4) {
  const __nv_bfloat16* x = s + (r0 + g) * ld + c0 + 2 * t4;
  a[0] = ld32(x);
  a[1] = ld32(x + 8 * ld);
  a[2] = ld32(x + 8);
  a[3] = ld32(x + 8 * ld + 8);
}

template <int D>
struct MmaBwd {
  static constexpr int kWarps = 8;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBc = 128;  // keys per block, 16 per warp
  static constexpr int kBr = 64;   // queries per step
  static constexpr int kLd = D + 8;
  static constexpr int kLdS = kBc + 8;
  static constexpr size_t kSmemBytes =
      static_cast<size_t>(2 * kBc + 4 * kBr) * kLd * 2 + static_cast<size_t>(kBr) * kLdS * 2 +
      4 * kBr * sizeof(float);
};

// FlashAttention-2 backward on tensor cores, bf16, M = 0. One block per 128 keys; query tiles
// of 64 stream through a two-stage cp.async pipeline. Each warp owns 16 keys: Sᵀ = KQᵀ and
// dPᵀ = VdOᵀ in registers, Pᵀ from the saved lse, dSᵀ = Pᵀ(dPᵀ − Dᵢ); dV += PᵀdO and
// dK += dSᵀQ accumulate in registers; dS goes through shared memory (transposed) for
// dQ += dS·K, added atomically in fp32.
// grid (nseg · key tiles per segment, B·H).
template <int D>
__global__ void __launch_bounds__(MmaBwd<D>::kThreads, 1) bwd_mma(Problem p, int64_t ktiles) {
  using F = MmaBwd<D>;
  constexpr int LD = F::kLd, LDS = F::kLdS, Bc = F::kBc, Br = F::kBr, KD = D / 16, ND = D / 8;
  constexpr int QN = Br / 8;  // query n-blocks of Sᵀ
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* Ks = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* Vs = Ks + Bc * LD;
  __nv_bfloat16* Qs = Vs + Bc * LD;  // 2 stages
  __nv_bfloat16* Os = Qs + 2 * Br * LD;  // dO, 2 stages
  __nv_bfloat16* Ss = Os + 2 * Br * LD;  // dS [query][key]
  float* lse_s = reinterpret_cast<float*>(Ss + Br * LDS);  // 2 stages
  float* di_s = lse_s + 2 * Br;

  const int64_t bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int64_t s = blockIdx.x / ktiles;
  const int64_t t0 = s * p.L;
  const int n = static_cast<int>(p.T - t0 < p.L ? p.T - t0 : p.L);
  const int lead = p.M > 0 ? 1 : 0;
  const int kb = static_cast<int>(blockIdx.x % ktiles);
  const bool memt = kb < lead;  // rmt: this block's keys are the segment's memory rows
  const int k0 = (kb - lead) * Bc;
  if (!memt && k0 >= n) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t4 = lane & 3, mat = lane >> 3, r8 = lane & 7;
  const float sl2 = p.scale * 1.4426950408889634f;
  const int kw = k0 + warp * 16;  // this warp's first key (segment-local)

  if (memt) {
    mem_rows<D, Bc, F::kThreads>(Ks, p, bh, s);
    mem_rows<D, Bc, F::kThreads>(Vs, p, bh, s);
  } else {
    cp_rows<D, Bc, F::kThreads>(Ks, p.k, p, b, h, t0 + k0, min(Bc, n - k0));
    cp_rows<D, Bc, F::kThreads>(Vs, p.v, p, b, h, t0 + k0, min(Bc, n - k0));
  }
  const int qt0 = memt ? 0 : k0 / Br, nqt = (n + Br - 1) / Br;
  auto load_q = [&](int qt, int st) {
    const int q0 = qt * Br, nq = min(Br, n - q0);
    cp_rows<D, Br, F::kThreads>(Qs + st * Br * LD, p.q, p, b, h, t0 + q0, nq);
    cp_rows<D, Br, F::kThreads>(Os + st * Br * LD, p.do_, p, b, h, t0 + q0, nq);
    for (int r = threadIdx.x; r < Br; r += F::kThreads) {
      lse_s[st * Br + r] = r < nq ? p.lse[bh * p.T + t0 + q0 + r] : 0.f;
      di_s[st * Br + r] = r < nq ? p.di[bh * p.T + t0 + q0 + r] : 0.f;
    }
  };
  load_q(qt0, 0);
  cp_async_commit();

  float dk[ND][4], dv[ND][4];
#pragma unroll
  for (int j = 0; j < ND; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[j][e] = dv[j][e] = 0.f;

  for (int qt = qt0; qt < nqt; qt++) {
    const int st = (qt - qt0) & 1;
    if (qt + 1 < nqt) {
      load_q(qt + 1, st ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int q0 = qt * Br;
    const __nv_bfloat16* Qt = Qs + st * Br * LD;
    const __nv_bfloat16* Ot = Os + st * Br * LD;
    const float* lse_t = lse_s + st * Br;
    const float* di_t = di_s + st * Br;
    if (memt ? warp * 16 < p.M : kw <= q0 + Br - 1) {
      float sc[QN][4], dp[QN][4];
#pragma unroll
      for (int nb = 0; nb < QN; nb++)
#pragma unroll
        for (int e = 0; e < 4; e++) sc[nb][e] = dp[nb][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD; kk++) {
        uint32_t ak[4], av[4];
        frag_a(ak, Ks, LD, warp * 16, kk * 16, g, t4);
        frag_a(av, Vs, LD, warp * 16, kk * 16, g, t4);
#pragma unroll
        for (int nb = 0; nb < QN; nb++) {
          const __nv_bfloat16* qr = Qt + (nb * 8 + g) * LD + kk * 16 + 2 * t4;
          const __nv_bfloat16* orow = Ot + (nb * 8 + g) * LD + kk * 16 + 2 * t4;
          mma_bf16(sc[nb], ak, ld32(qr), ld32(qr + 8));
          mma_bf16(dp[nb], av, ld32(orow), ld32(orow + 8));
        }
      }
      // Pᵀ and dSᵀ in place (sc ← P, dp ← dS); dS also to smem, transposed
#pragma unroll
      for (int nb = 0; nb < QN; nb++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int kl = warp * 16 + g + 8 * (e >> 1);  // block-local key
          const int ql = nb * 8 + 2 * t4 + (e & 1);     // tile-local query
          const bool ok = (memt ? kl < p.M : k0 + kl <= q0 + ql) && q0 + ql < n;
          const float pr = ok ? exp2f(sc[nb][e] * sl2 - lse_t[ql]) : 0.f;
          const float ds = pr * (dp[nb][e] - di_t[ql]);
          sc[nb][e] = pr;
          dp[nb][e] = ds;
          Ss[ql * LDS + kl] = __float2bfloat16_rn(ds);
        }
      }
      uint32_t ap[Br / 16][4], as[Br / 16][4];  // bf16 A fragments of Pᵀ and dSᵀ
#pragma unroll
      for (int kk = 0; kk < Br / 16; kk++) {
        ap[kk][0] = pack_bf16(sc[2 * kk][0], sc[2 * kk][1]);
        ap[kk][1] = pack_bf16(sc[2 * kk][2], sc[2 * kk][3]);
        ap[kk][2] = pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
        ap[kk][3] = pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
        as[kk][0] = pack_bf16(dp[2 * kk][0], dp[2 * kk][1]);
        as[kk][1] = pack_bf16(dp[2 * kk][2], dp[2 * kk][3]);
        as[kk][2] = pack_bf16(dp[2 * kk + 1][0], dp[2 * kk + 1][1]);
        as[kk][3] = pack_bf16(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
      }
#pragma unroll
      for (int kk = 0; kk < Br / 16; kk++) {
#pragma unroll
        for (int dq2 = 0; dq2 < D / 16; dq2++) {
          const int row = kk * 16 + (mat & 1) * 8 + r8, col = dq2 * 16 + (mat >> 1) * 8;
          uint32_t bo[4], bq[4];
          ldmatrix_x4_trans(bo, Ot + row * LD + col);
          ldmatrix_x4_trans(bq, Qt + row * LD + col);
          mma_bf16(dv[2 * dq2], ap[kk], bo[0], bo[1]);
          mma_bf16(dv[2 * dq2 + 1], ap[kk], bo[2], bo[3]);
          mma_bf16(dk[2 * dq2], as[kk], bq[0], bq[1]);
          mma_bf16(dk[2 * dq2 + 1], as[kk], bq[2], bq[3]);
        }
      }
    } else {
      // every key of this warp is after every query of the tile: dS = 0
      for (int i = lane; i < Br * 16; i += 32) {
        Ss[(i / 16) * LDS + warp * 16 + i % 16] = __float2bfloat16_rn(0.f);
      }
    }
    __syncthreads();
    // dQ[q0 + 16(w%4) …, D/2·(w/4) …] += scale · dS K
    {
      constexpr int DH = D / 2, NH = DH / 8;
      const int qr0 = (warp % 4) * 16, d0 = (warp / 4) * DH;
      float dq[NH][4];
#pragma unroll
      for (int j = 0; j < NH; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) dq[j][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < Bc / 16; kk++) {
        uint32_t a[4];
        frag_a(a, Ss, LDS, qr0, kk * 16, g, t4);
#pragma unroll
        for (int dq2 = 0; dq2 < DH / 16; dq2++) {
          uint32_t bk[4];
          ldmatrix_x4_trans(bk, Ks + (kk * 16 + (mat & 1) * 8 + r8) * LD + d0 + dq2 * 16 +
                                    (mat >> 1) * 8);
          mma_bf16(dq[2 * dq2], a, bk[0], bk[1]);
          mma_bf16(dq[2 * dq2 + 1], a, bk[2], bk[3]);
        }
      }
#pragma unroll
      for (int hf = 0; hf < 2; hf++) {
        const int ql = qr0 + g + 8 * hf;
        if (q0 + ql >= n) continue;
        float* row = p.dq_acc + ((b * p.T + t0 + q0 + ql) * p.H + h) * D + d0 + 2 * t4;
#pragma unroll
        for (int j = 0; j < NH; j++) {
          atomicAdd(row + j * 8, p.scale * dq[j][2 * hf]);
          atomicAdd(row + j * 8 + 1, p.scale * dq[j][2 * hf + 1]);
        }
      }
    }
    __syncthreads();
  }
  if (memt) {
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
      const int kl = warp * 16 + g + 8 * hf;
      if (kl >= p.M) continue;
      float* dst = p.dmemtok + ((bh * p.nseg + s) * p.M + kl) * D + 2 * t4;
#pragma unroll
      for (int j = 0; j < ND; j++) {
        dst[j * 8] = p.scale * dk[j][2 * hf] + dv[j][2 * hf];
        dst[j * 8 + 1] = p.scale * dk[j][2 * hf + 1] + dv[j][2 * hf + 1];
      }
    }
    return;
  }
#pragma unroll
  for (int hf = 0; hf < 2; hf++) {
    const int key = kw + g + 8 * hf;
    if (key >= n) continue;
    const int64_t row = ((b * p.T + t0 + key) * p.H + h) * D + 2 * t4;
#pragma unroll
    for (int j = 0; j < ND; j++) {
      const float k0v = p.scale * dk[j][2 * hf], k1v = p.scale * dk[j][2 * hf + 1];
      const float v0v = dv[j][2 * hf], v1v = dv[j][2 * hf + 1];
      if (p.dkv_f32) {
        float* dkp = static_cast<float*>(p.dk) + row + j * 8;
        float* dvp = static_cast<float*>(p.dv) + row + j * 8;
        dkp[0] = k0v;
        dkp[1] = k1v;
        dvp[0] = v0v;
        dvp[1] = v1v;
      } else {
        *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(p.dk) + row + j * 8) =
            __floats2bfloat162_rn(k0v, k1v);
        *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(p.dv) + row + j * 8) =
            __floats2bfloat162_rn(v0v, v1v);
      }
    }
  }
}

}  // namespace attn
}  // namespace lak
