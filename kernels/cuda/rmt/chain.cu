// rmt's memory chain kernels (see chain.h). One block of 256 threads per (b,h); per segment,
// the M memory rows (M ≤ 64) attend over [M_s; the segment's tokens] in key tiles of 64 with an
// online softmax (log2 domain), all in fp32 shared memory. The memories M_0 … M_S and the
// updates' lse stay in the workspace for the token attention and the backward.
#include <cuda_bf16.h>

#include "../runtime/runtime.h"
#include "../softmax/flash_simt.cuh"
#include "chain.h"

namespace lak {
namespace rmt {
namespace {

constexpr int kThreads = 256;
constexpr int kT = attn::kTile;

template <typename T>
using Io = attn::Io<T>;

// Rows [t, t+n) of a [B,T,H,D] tensor for (b,h), as fp32, row stride ld.
template <typename T, int D>
__device__ void load_tokens(float* s, int ld, const void* g, const Chain& c, int64_t b, int64_t h,
                            int64_t t, int n) {
  for (int idx = threadIdx.x; idx < n * D; idx += kThreads) {
    const int r = idx / D, col = idx % D;
    s[r * ld + col] = Io<T>::load(g, ((b * c.T + t + r) * c.H + h) * D + col);
  }
}

template <int D>
size_t fwd_smem(int64_t M) {
  return static_cast<size_t>(M * (D + 1) + 2 * kT * (D + 1) + M * (kT + 1) + 3 * M + M * D) *
         sizeof(float);
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) chain_fwd_kernel(Chain c) {
  constexpr int LD = D + 1, PL = kT + 1;
  const int M = static_cast<int>(c.M);
  extern __shared__ float smem[];
  float* Ms = smem;              // [M][LD]
  float* Kt = Ms + M * LD;       // [64][LD]
  float* Vt = Kt + kT * LD;      // [64][LD]
  float* Sc = Vt + kT * LD;      // [M][PL]
  float* mrow = Sc + M * PL;
  float* lrow = mrow + M;
  float* arow = lrow + M;
  float* acc = arow + M;         // [M][D]
  const int64_t bh = blockIdx.x, b = bh / c.H, h = bh % c.H;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float sl2 = c.scale * attn::kLog2e;
  float* mems = c.mems + bh * (c.nseg + 1) * M * D;

  for (int idx = threadIdx.x; idx < M * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    const float x = Io<T>::load(c.mem, ((b * c.M + r) * c.H + h) * D + d);
    Ms[r * LD + d] = x;
    mems[idx] = x;
  }
  __syncthreads();
  for (int64_t s = 0; s < c.nseg; s++) {
    const int64_t t0 = s * c.L;
    const int n = static_cast<int>(c.T - t0 < c.L ? c.T - t0 : c.L);
    for (int idx = threadIdx.x; idx < M * D; idx += kThreads) acc[idx] = 0.f;
    for (int r = threadIdx.x; r < M; r += kThreads) {
      mrow[r] = -INFINITY;
      lrow[r] = 0.f;
    }
    const int ntiles = 1 + (n + kT - 1) / kT;
    for (int tile = 0; tile < ntiles; tile++) {
      int nk;
      if (tile == 0) {
        nk = M;
        for (int idx = threadIdx.x; idx < M * D; idx += kThreads) {
          const int r = idx / D, d = idx % D;
          Kt[r * LD + d] = Ms[r * LD + d];
          Vt[r * LD + d] = Ms[r * LD + d];
        }
      } else {
        const int k0 = (tile - 1) * kT;
        nk = min(kT, n - k0);
        load_tokens<T, D>(Kt, LD, c.k, c, b, h, t0 + k0, nk);
        load_tokens<T, D>(Vt, LD, c.v, c, b, h, t0 + k0, nk);
      }
      __syncthreads();
      for (int idx = threadIdx.x; idx < M * kT; idx += kThreads) {
        const int r = idx / kT, col = idx % kT;
        float x = -INFINITY;
        if (col < nk) {
          float dot = 0.f;
#pragma unroll 8
          for (int d = 0; d < D; d++) dot = fmaf(Ms[r * LD + d], Kt[col * LD + d], dot);
          x = dot * sl2;
        }
        Sc[r * PL + col] = x;
      }
      __syncthreads();
      for (int r = warp; r < M; r += kThreads / 32) {
        const float a0 = Sc[r * PL + lane], a1 = Sc[r * PL + lane + 32];
        float mx = fmaxf(a0, a1);
#pragma unroll
        for (int o = 16; o >= 1; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        const float mn = fmaxf(mrow[r], mx);  // finite: every tile has a valid key
        const float p0 = exp2f(a0 - mn), p1 = exp2f(a1 - mn);
        float sum = p0 + p1;
#pragma unroll
        for (int o = 16; o >= 1; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        Sc[r * PL + lane] = p0;
        Sc[r * PL + lane + 32] = p1;
        __syncwarp();
        if (lane == 0) {
          const float al = exp2f(mrow[r] - mn);
          arow[r] = al;
          lrow[r] = al * lrow[r] + sum;
          mrow[r] = mn;
        }
      }
      __syncthreads();
      for (int idx = threadIdx.x; idx < M * D; idx += kThreads) {
        const int r = idx / D, d = idx % D;
        float x = acc[idx] * arow[r];
        for (int col = 0; col < nk; col++) x = fmaf(Sc[r * PL + col], Vt[col * LD + d], x);
        acc[idx] = x;
      }
      __syncthreads();
    }
    float* next = mems + (s + 1) * M * D;
    for (int idx = threadIdx.x; idx < M * D; idx += kThreads) {
      const int r = idx / D, d = idx % D;
      const float x = acc[idx] / lrow[r];
      Ms[r * LD + d] = x;
      next[idx] = x;
    }
    for (int r = threadIdx.x; r < M; r += kThreads) {
      c.lse[(bh * c.nseg + s) * M + r] = mrow[r] + log2f(lrow[r]);
    }
    __syncthreads();
  }
  if (c.final_state) {
    for (int idx = threadIdx.x; idx < M * D; idx += kThreads) {
      const int r = idx / D, d = idx % D;
      c.final_state[((b * c.M + r) * c.H + h) * D + d] = Ms[r * LD + d];
    }
  }
}

template <int D>
size_t bwd_smem(int64_t M) {
  return static_cast<size_t>(2 * M * (D + 1) + 2 * M * D + 2 * kT * (D + 1) + 2 * M * (kT + 1) +
                             2 * M) *
         sizeof(float);
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) chain_bwd_kernel(Chain c) {
  constexpr int LD = D + 1, PL = kT + 1;
  const int M = static_cast<int>(c.M);
  extern __shared__ float smem[];
  float* Ms = smem;           // [M][LD] M_s
  float* G = Ms + M * LD;     // [M][LD] dℓ/dM_{s+1}
  float* dQ = G + M * LD;     // [M][D]
  float* Gn = dQ + M * D;     // [M][D] dℓ/dM_s without the update's query part
  float* Kt = Gn + M * D;     // [64][LD]
  float* Vt = Kt + kT * LD;
  float* Ps = Vt + kT * LD;   // [M][PL]
  float* Ss = Ps + M * PL;    // [M][PL]
  float* lse = Ss + M * PL;
  float* Dr = lse + M;
  const int64_t bh = blockIdx.x, b = bh / c.H, h = bh % c.H;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float sl2 = c.scale * attn::kLog2e;
  const float* mems = c.mems + bh * (c.nseg + 1) * M * D;

  for (int idx = threadIdx.x; idx < M * D; idx += kThreads) G[(idx / D) * LD + idx % D] = 0.f;
  __syncthreads();
  for (int64_t s = c.nseg - 1; s >= 0; s--) {
    const int64_t t0 = s * c.L;
    const int n = static_cast<int>(c.T - t0 < c.L ? c.T - t0 : c.L);
    const float* ms = mems + s * M * D;
    const float* mn = ms + M * D;
    const float* tok = c.dmemtok + (bh * c.nseg + s) * M * D;
    for (int idx = threadIdx.x; idx < M * D; idx += kThreads) {
      Ms[(idx / D) * LD + idx % D] = ms[idx];
      dQ[idx] = 0.f;
      Gn[idx] = tok[idx];
    }
    for (int r = warp; r < M; r += kThreads / 32) {
      float x = 0.f;
      for (int d = lane; d < D; d += 32) x += G[r * LD + d] * mn[r * D + d];
#pragma unroll
      for (int o = 16; o >= 1; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
      if (lane == 0) {
        Dr[r] = x;
        lse[r] = c.lse[(bh * c.nseg + s) * M + r];
      }
    }
    __syncthreads();
    const int ntiles = 1 + (n + kT - 1) / kT;
    for (int tile = 0; tile < ntiles; tile++) {
      int nk, k0 = 0;
      if (tile == 0) {
        nk = M;
        for (int idx = threadIdx.x; idx < M * D; idx += kThreads) {
          const int r = idx / D, d = idx % D;
          Kt[r * LD + d] = Ms[r * LD + d];
          Vt[r * LD + d] = Ms[r * LD + d];
        }
      } else {
        k0 = (tile - 1) * kT;
        nk = min(kT, n - k0);
        load_tokens<T, D>(Kt, LD, c.k, c, b, h, t0 + k0, nk);
        load_tokens<T, D>(Vt, LD, c.v, c, b, h, t0 + k0, nk);
      }
      __syncthreads();
      for (int idx = threadIdx.x; idx < M * kT; idx += kThreads) {
        const int r = idx / kT, col = idx % kT;
        float pr = 0.f, ds = 0.f;
        if (col < nk) {
          float dot = 0.f, dp = 0.f;
#pragma unroll 8
          for (int d = 0; d < D; d++) {
            dot = fmaf(Ms[r * LD + d], Kt[col * LD + d], dot);
            dp = fmaf(G[r * LD + d], Vt[col * LD + d], dp);
          }
          pr = exp2f(dot * sl2 - lse[r]);
          ds = pr * (dp - Dr[r]);
        }
        Ps[r * PL + col] = pr;
        Ss[r * PL + col] = ds;
      }
      __syncthreads();
      for (int idx = threadIdx.x; idx < M * D; idx += kThreads) {
        const int r = idx / D, d = idx % D;
        float x = dQ[idx];
        for (int col = 0; col < nk; col++) x = fmaf(Ss[r * PL + col], Kt[col * LD + d], x);
        dQ[idx] = x;
      }
      for (int idx = threadIdx.x; idx < nk * D; idx += kThreads) {
        const int col = idx / D, d = idx % D;
        float dk = 0.f, dv = 0.f;
        for (int r = 0; r < M; r++) {
          dk = fmaf(Ss[r * PL + col], Ms[r * LD + d], dk);
          dv = fmaf(Ps[r * PL + col], G[r * LD + d], dv);
        }
        dk *= c.scale;
        if (tile == 0) {
          Gn[idx] += dk + dv;
        } else {
          const int64_t gi = ((b * c.T + t0 + k0 + col) * c.H + h) * D + d;
          c.dk_acc[gi] += dk;
          c.dv_acc[gi] += dv;
        }
      }
      __syncthreads();
    }
    for (int idx = threadIdx.x; idx < M * D; idx += kThreads) {
      G[(idx / D) * LD + idx % D] = c.scale * dQ[idx] + Gn[idx];
    }
    __syncthreads();
  }
  for (int idx = threadIdx.x; idx < M * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    Io<T>::store(c.dmem, ((b * c.M + r) * c.H + h) * D + d, G[r * LD + d]);
  }
}

template <typename T, int D>
int fwd_launch(const Chain& c, cudaStream_t stream) {
  auto k = chain_fwd_kernel<T, D>;
  const int bytes = static_cast<int>(fwd_smem<D>(c.M));
  LAK_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
           "cudaFuncSetAttribute(rmt chain fwd)");
  k<<<static_cast<unsigned>(c.B * c.H), kThreads, bytes, stream>>>(c);
  LAK_CUDA(cudaGetLastError(), "launch rmt chain fwd kernel");
  return LAK_OK;
}

template <typename T, int D>
int bwd_launch(const Chain& c, cudaStream_t stream) {
  auto k = chain_bwd_kernel<T, D>;
  const int bytes = static_cast<int>(bwd_smem<D>(c.M));
  LAK_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
           "cudaFuncSetAttribute(rmt chain bwd)");
  k<<<static_cast<unsigned>(c.B * c.H), kThreads, bytes, stream>>>(c);
  LAK_CUDA(cudaGetLastError(), "launch rmt chain bwd kernel");
  return LAK_OK;
}

}  // namespace

// Sizes only, no CUDA calls (lak_op_workspace needs no GPU): the chain kernels' shared memory
// against sm_90's opt-in limit (227 KiB); a device with less fails at cudaFuncSetAttribute.
int chain_check(const Chain& c) {
  constexpr int optin = 232448;
  const size_t need = c.D == 64 ? bwd_smem<64>(c.M) : bwd_smem<128>(c.M);
  if (need > static_cast<size_t>(optin)) {
    return fail(LAK_ERR_UNSUPPORTED,
                "rmt memory chain with M=%lld, D=%lld needs %zu bytes of shared memory per block; "
                "sm_90 allows %d",
                static_cast<long long>(c.M), static_cast<long long>(c.D), need, optin);
  }
  if (c.B * c.H > 2147483647LL) return fail(LAK_ERR_UNSUPPORTED, "B*H exceeds 2^31-1");
  return LAK_OK;
}

int chain_forward(const Chain& c, cudaStream_t stream) {
  if (c.bf16) {
    return c.D == 64 ? fwd_launch<__nv_bfloat16, 64>(c, stream)
                     : fwd_launch<__nv_bfloat16, 128>(c, stream);
  }
  return c.D == 64 ? fwd_launch<float, 64>(c, stream) : fwd_launch<float, 128>(c, stream);
}

int chain_backward(const Chain& c, cudaStream_t stream) {
  if (c.bf16) {
    return c.D == 64 ? bwd_launch<__nv_bfloat16, 64>(c, stream)
                     : bwd_launch<__nv_bfloat16, 128>(c, stream);
  }
  return c.D == 64 ? bwd_launch<float, 64>(c, stream) : bwd_launch<float, 128>(c, stream);
}

}  // namespace rmt
}  // namespace lak
