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

// grid (nseg · query tiles per segment, B·H), MmaFwd<D>::kThreads threads.
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
  const int q0 = static_cast<int>(blockIdx.x % qtiles) * Br;
  if (q0 >= n) return;
  const int nq = min(Br, n - q0);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int wrow0 = q0 + warp * 16 * RW;  // segment-local first row of this warp
  const float sl2 = p.scale * 1.4426950408889634f;
  const int nkt = (q0 + nq - 1) / Bc + 1;

  cp_rows<D, Br, F::kThreads>(Qs, p.q, p, b, h, t0 + q0, nq);
  cp_rows<D, Bc, F::kThreads>(Ks, p.k, p, b, h, t0, min(Bc, n));
  cp_rows<D, Bc, F::kThreads>(Vs, p.v, p, b, h, t0, min(Bc, n));
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
      const int k1 = (kt + 1) * Bc;
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
    const int k0 = kt * Bc;
    if (k0 <= wrow0 + 16 * RW - 1) {  // else every key of this tile is in this warp's future
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
      const bool diag = k0 + Bc - 1 > wrow0;
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
