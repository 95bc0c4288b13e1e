// SIMT (fp32 FMA) kernels of the attention core: the fp32 path for both directions, and the
// general path for bf16 where no tensor-core kernel applies. Tiles of 64 queries × 64 keys,
// 256 threads as a 16 × 16 grid: thread (ty, tx) owns rows ty·4 … ty·4+3 and columns tx + 16j.
//
// Key tiles of a segment: one leading memory tile (M ≤ 64 rows, rmt only), then the segment's
// tokens in tiles of 64 counted from the segment start, so token tile kt meets query tile qt on
// the diagonal when kt = qt. Scores are kept in the log2 domain: s = scale·log2(e)·q·k, and the
// saved lse is log2 Σ exp2(s).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "flash.h"

namespace lak {
namespace attn {

constexpr int kTile = 64;
constexpr int kSimtThreads = 256;
constexpr float kLog2e = 1.4426950408889634f;

template <typename T>
struct Io;
template <>
struct Io<float> {
  static __device__ __forceinline__ float load(const void* p, int64_t i) {
    return __ldg(static_cast<const float*>(p) + i);
  }
  static __device__ __forceinline__ void store(void* p, int64_t i, float x) {
    static_cast<float*>(p)[i] = x;
  }
};
template <>
struct Io<__nv_bfloat16> {
  static __device__ __forceinline__ float load(const void* p, int64_t i) {
    return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  }
  static __device__ __forceinline__ void store(void* p, int64_t i, float x) {
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(x);
  }
};

// Rows [t, t+n) of a [B,T,H,D] tensor for (b,h) into s (row stride ld); rows n … 63 are zero.
template <typename T, int D>
__device__ __forceinline__ void load_tok(float* s, int ld, const void* g, const Problem& p,
                                         int64_t b, int64_t h, int64_t t, int n) {
  for (int idx = threadIdx.x; idx < kTile * D; idx += blockDim.x) {
    const int r = idx / D, c = idx % D;
    s[r * ld + c] = r < n ? Io<T>::load(g, ((b * p.T + t + r) * p.H + h) * D + c) : 0.f;
  }
}

// Rows [0, n) of an fp32 [n][D] block into s; rows n … 63 are zero.
template <int D>
__device__ __forceinline__ void load_f32(float* s, int ld, const float* g, int n) {
  for (int idx = threadIdx.x; idx < kTile * D; idx += blockDim.x) {
    const int r = idx / D, c = idx % D;
    s[r * ld + c] = r < n ? g[static_cast<int64_t>(r) * D + c] : 0.f;
  }
}

__device__ __forceinline__ float reduce16_max(float x) {
#pragma unroll
  for (int o = 8; o >= 1; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float reduce16_sum(float x) {
#pragma unroll
  for (int o = 8; o >= 1; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

struct Seg {
  int64_t s, t0;
  int n;  // tokens in the segment
};

__device__ __forceinline__ Seg segment_of(const Problem& p, int64_t s) {
  Seg g;
  g.s = s;
  g.t0 = s * p.L;
  const int64_t rest = p.T - g.t0;
  g.n = static_cast<int>(rest < p.L ? rest : p.L);
  return g;
}

template <int D>
struct SimtFwdSmem {
  static constexpr int kLd = D + 1;
  static constexpr size_t kBytes = (3 * kTile * kLd + kTile * (kTile + 1)) * sizeof(float);
};

// grid (nseg · tiles per segment, B·H). Writes o (if set), lse and (with do_) di.
template <typename T, int D>
__global__ void __launch_bounds__(kSimtThreads) fwd_simt(Problem p, int64_t qtiles) {
  constexpr int LD = SimtFwdSmem<D>::kLd, NJ = D / 16;
  extern __shared__ float smem[];
  float* Qs = smem;
  float* Ks = Qs + kTile * LD;
  float* Vs = Ks + kTile * LD;
  float* Ps = Vs + kTile * LD;
  const int64_t bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const Seg sg = segment_of(p, blockIdx.x / qtiles);
  const int qt = static_cast<int>(blockIdx.x % qtiles);
  const int q0 = qt * kTile;  // segment-local first query
  if (q0 >= sg.n) return;
  const int nq = min(kTile, sg.n - q0);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const float sl2 = p.scale * kLog2e;

  load_tok<T, D>(Qs, LD, p.q, p, b, h, sg.t0 + q0, nq);
  float m[4], l[4], acc[4][NJ];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int j = 0; j < NJ; j++) acc[i][j] = 0.f;
  }
  const int lead = p.M > 0 ? 1 : 0;
  for (int kt = 0; kt < lead + qt + 1; kt++) {
    const bool memt = kt < lead;
    const int k0 = (kt - lead) * kTile;  // segment-local first key (token tiles)
    if (memt) {
      const float* mp = p.mems + (bh * (p.nseg + 1) + sg.s) * p.M * D;
      load_f32<D>(Ks, LD, mp, static_cast<int>(p.M));
      load_f32<D>(Vs, LD, mp, static_cast<int>(p.M));
    } else {
      const int nk = min(kTile, sg.n - k0);
      load_tok<T, D>(Ks, LD, p.k, p, b, h, sg.t0 + k0, nk);
      load_tok<T, D>(Vs, LD, p.v, p, b, h, sg.t0 + k0, nk);
    }
    __syncthreads();
    float s[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) s[i][j] = 0.f;
#pragma unroll 8
    for (int d = 0; d < D; d++) {
      float qa[4], ka[4];
#pragma unroll
      for (int i = 0; i < 4; i++) qa[i] = Qs[(ty * 4 + i) * LD + d];
#pragma unroll
      for (int j = 0; j < 4; j++) ka[j] = Ks[(tx + 16 * j) * LD + d];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) s[i][j] = fmaf(qa[i], ka[j], s[i][j]);
    }
    float alpha[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int r = ty * 4 + i;
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int c = tx + 16 * j;
        const bool ok = memt ? c < p.M : (kt - lead < qt || c <= r);
        s[i][j] = ok ? s[i][j] * sl2 : -INFINITY;
        mx = fmaxf(mx, s[i][j]);
      }
      mx = reduce16_max(mx);
      const float mn = fmaxf(m[i], mx);
      alpha[i] = mn == -INFINITY ? 1.f : exp2f(m[i] - mn);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const float e = mn == -INFINITY ? 0.f : exp2f(s[i][j] - mn);
        Ps[r * (kTile + 1) + tx + 16 * j] = e;
        sum += e;
      }
      sum = reduce16_sum(sum);
      l[i] = alpha[i] * l[i] + sum;
      m[i] = mn;
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < NJ; j++) acc[i][j] *= alpha[i];
#pragma unroll 4
    for (int c = 0; c < kTile; c++) {
      float va[NJ];
#pragma unroll
      for (int j = 0; j < NJ; j++) va[j] = Vs[c * LD + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const float pv = Ps[(ty * 4 + i) * (kTile + 1) + c];
#pragma unroll
        for (int j = 0; j < NJ; j++) acc[i][j] = fmaf(pv, va[j], acc[i][j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int r = ty * 4 + i;
    const float inv = 1.f / l[i];
    const int64_t t = sg.t0 + q0 + r;
    const bool ok = r < nq;
    float dsum = 0.f;
#pragma unroll
    for (int j = 0; j < NJ; j++) {
      const float ov = acc[i][j] * inv;
      const int64_t idx = ((b * p.T + t) * p.H + h) * D + tx + 16 * j;
      if (ok && p.o) Io<T>::store(p.o, idx, ov);
      if (ok && p.do_) dsum += ov * Io<T>::load(p.do_, idx);
    }
    dsum = reduce16_sum(dsum);
    if (ok && tx == 0) {
      p.lse[bh * p.T + t] = m[i] + log2f(l[i]);
      if (p.do_) p.di[bh * p.T + t] = dsum;
    }
  }
}

template <int D>
struct SimtBwdSmem {
  static constexpr int kLd = D + 1;
  static constexpr size_t kBytes =
      (4 * kTile * kLd + 2 * kTile * (kTile + 1) + 2 * kTile) * sizeof(float);
};

// grid (nseg · (lead + tiles per segment), B·H); one block per key tile, query tiles inner.
template <typename T, int D>
__global__ void __launch_bounds__(kSimtThreads) bwd_simt(Problem p, int64_t qtiles) {
  constexpr int LD = SimtBwdSmem<D>::kLd, NJ = D / 16, PL = kTile + 1;
  extern __shared__ float smem[];
  float* Ks = smem;
  float* Vs = Ks + kTile * LD;
  float* Qs = Vs + kTile * LD;
  float* Os = Qs + kTile * LD;  // dO
  float* Ps = Os + kTile * LD;
  float* Ss = Ps + kTile * PL;  // dS
  float* lse_s = Ss + kTile * PL;
  float* di_s = lse_s + kTile;
  const int lead = p.M > 0 ? 1 : 0;
  const int64_t ktiles = qtiles + lead;
  const int64_t bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const Seg sg = segment_of(p, blockIdx.x / ktiles);
  const int kt = static_cast<int>(blockIdx.x % ktiles);
  const bool memt = kt < lead;
  const int k0 = (kt - lead) * kTile;
  if (!memt && k0 >= sg.n) return;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const float sl2 = p.scale * kLog2e;
  const int nkeys = memt ? static_cast<int>(p.M) : min(kTile, sg.n - k0);
  const float* mp = memt ? p.mems + (bh * (p.nseg + 1) + sg.s) * p.M * D : nullptr;
  if (memt) {
    load_f32<D>(Ks, LD, mp, nkeys);
    load_f32<D>(Vs, LD, mp, nkeys);
  } else {
    load_tok<T, D>(Ks, LD, p.k, p, b, h, sg.t0 + k0, nkeys);
    load_tok<T, D>(Vs, LD, p.v, p, b, h, sg.t0 + k0, nkeys);
  }
  float dk[4][NJ], dv[4][NJ];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < NJ; j++) dk[i][j] = dv[i][j] = 0.f;
  const int nqt = (sg.n + kTile - 1) / kTile;
  for (int qt = memt ? 0 : kt - lead; qt < nqt; qt++) {
    const int q0 = qt * kTile, nq = min(kTile, sg.n - q0);
    load_tok<T, D>(Qs, LD, p.q, p, b, h, sg.t0 + q0, nq);
    load_tok<T, D>(Os, LD, p.do_, p, b, h, sg.t0 + q0, nq);
    for (int r = threadIdx.x; r < kTile; r += blockDim.x) {
      lse_s[r] = r < nq ? p.lse[bh * p.T + sg.t0 + q0 + r] : 0.f;
      di_s[r] = r < nq ? p.di[bh * p.T + sg.t0 + q0 + r] : 0.f;
    }
    __syncthreads();
    float s[4][4], dp[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) s[i][j] = dp[i][j] = 0.f;
#pragma unroll 4
    for (int d = 0; d < D; d++) {
      float qa[4], oa[4], ka[4], va[4];
#pragma unroll
      for (int i = 0; i < 4; i++) {
        qa[i] = Qs[(ty * 4 + i) * LD + d];
        oa[i] = Os[(ty * 4 + i) * LD + d];
      }
#pragma unroll
      for (int j = 0; j < 4; j++) {
        ka[j] = Ks[(tx + 16 * j) * LD + d];
        va[j] = Vs[(tx + 16 * j) * LD + d];
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
          s[i][j] = fmaf(qa[i], ka[j], s[i][j]);
          dp[i][j] = fmaf(oa[i], va[j], dp[i][j]);
        }
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int r = ty * 4 + i;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int c = tx + 16 * j;
        const bool ok =
            r < nq && c < nkeys && (memt || qt > kt - lead || c <= r);
        const float pr = ok ? exp2f(s[i][j] * sl2 - lse_s[r]) : 0.f;
        Ps[r * PL + c] = pr;
        Ss[r * PL + c] = pr * (dp[i][j] - di_s[r]);
      }
    }
    __syncthreads();
    // dV += Pᵀ dO, dK += dSᵀ Q over this tile's queries (this thread's key rows ty·4+i)
#pragma unroll 2
    for (int r = 0; r < kTile; r++) {
      float oa[NJ], qa[NJ];
#pragma unroll
      for (int j = 0; j < NJ; j++) {
        oa[j] = Os[r * LD + tx + 16 * j];
        qa[j] = Qs[r * LD + tx + 16 * j];
      }
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const float pr = Ps[r * PL + ty * 4 + i], ds = Ss[r * PL + ty * 4 + i];
#pragma unroll
        for (int j = 0; j < NJ; j++) {
          dv[i][j] = fmaf(pr, oa[j], dv[i][j]);
          dk[i][j] = fmaf(ds, qa[j], dk[i][j]);
        }
      }
    }
    // dQ += scale · dS K, atomically (other key tiles add to the same rows)
    {
      float dq[4][NJ];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++) dq[i][j] = 0.f;
#pragma unroll 2
      for (int c = 0; c < kTile; c++) {
        float ka[NJ];
#pragma unroll
        for (int j = 0; j < NJ; j++) ka[j] = Ks[c * LD + tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const float ds = Ss[(ty * 4 + i) * PL + c];
#pragma unroll
          for (int j = 0; j < NJ; j++) dq[i][j] = fmaf(ds, ka[j], dq[i][j]);
        }
      }
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int r = ty * 4 + i;
        if (r >= nq) continue;
        const int64_t row = ((b * p.T + sg.t0 + q0 + r) * p.H + h) * D;
#pragma unroll
        for (int j = 0; j < NJ; j++) atomicAdd(p.dq_acc + row + tx + 16 * j, p.scale * dq[i][j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int c = ty * 4 + i;
    if (c >= nkeys) continue;
    if (memt) {
      float* dst = p.dmemtok + ((bh * p.nseg + sg.s) * p.M + c) * D;
#pragma unroll
      for (int j = 0; j < NJ; j++) dst[tx + 16 * j] = p.scale * dk[i][j] + dv[i][j];
    } else {
      const int64_t row = ((b * p.T + sg.t0 + k0 + c) * p.H + h) * D;
#pragma unroll
      for (int j = 0; j < NJ; j++) {
        const int64_t idx = row + tx + 16 * j;
        if (p.dkv_f32) {
          static_cast<float*>(p.dk)[idx] = p.scale * dk[i][j];
          static_cast<float*>(p.dv)[idx] = dv[i][j];
        } else {
          Io<T>::store(p.dk, idx, p.scale * dk[i][j]);
          Io<T>::store(p.dv, idx, dv[i][j]);
        }
      }
    }
  }
}

}  // namespace attn
}  // namespace lak
