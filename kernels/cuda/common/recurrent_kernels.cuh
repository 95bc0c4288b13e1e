// The `recurrent` baseline (LAK_IMPL_RECURRENT) of la, gla and deltanet: the RNN form token
// by token, the state kept in registers. Shared by kernels/cuda/{la,gla,deltanet}/recurrent.cu,
// each of which instantiates it for its own variant (template parameter VAR).
//
// Grid: (B·H, V/64) blocks of 256 threads; a block owns the K×64 slice S[:, j0:j0+64] of one
// head's state. Thread tid = cg·16 + ks holds rows i = ks + 16r (r < K/16) of the 4 columns
// j = j0 + 4cg … j0 + 4cg + 3, so reductions over K (o_t, deltanet's Sᵀk, dv) are 16-lane
// shuffles and the forward needs no shared memory and no barrier.
//
// Backward (three launches):
//   1. fwd_kernel again, also writing the state every kStretch tokens (checkpoints) and, for
//      la, the per-token denominators and Σ_j do_j n_j (atomics across V tiles).
//   2. bwd_kernel: stretches last to first. Recompute the stretch forward from its checkpoint,
//      storing each S_t in a per-block scratch (thread-private, coalesced), then sweep it in
//      reverse carrying dS (and dz). Per token, sums over V (dq, dk, dg, dβ) go through a
//      shared-memory reduction across the block's 8 warps (one barrier per token) and are
//      written as one fp32 partial per V tile; dv is complete in the block and written at once.
//   3. finalize_kernel: sums the V-tile partials, applies φ′ (la) or the l2-norm backward
//      (deltanet), and writes dq, dk, dg, dβ at the storage dtype.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lak {
namespace rec {

constexpr int kLa = 0, kGla = 1, kDeltanet = 2;  // VAR

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kKS = 16;                       // K slices: lanes sharing a column
constexpr int kVT = 64;                       // V columns per block
constexpr int kC = kVT / (kThreads / kKS);    // columns per thread (4)
constexpr int kStretch = 64;                  // tokens between checkpoints
constexpr float kLaEps = 1e-6f;
constexpr float kL2Eps = 1e-6f;

// Per-thread state slots: S (R·C), plus z (R, replicated across column groups) for la.
template <int VAR, int K>
struct Slots {
  static constexpr int R = K / kKS;
  static constexpr int E = R * kC + (VAR == kLa ? R : 0);
};

struct Args {
  const void* q;
  const void* k;
  const void* v;
  const void* g;
  const void* beta;
  const void* dout;
  const float* h0;
  const float* z0;
  void* o;
  float* final_state;
  float* final_z;
  void* dq;
  void* dk;
  void* dv;
  void* dg;
  void* dbeta;
  float* dh0;
  float* dz0;
  // Backward workspace (nullptr in a plain forward).
  float* ckpt;     // [B·H][NV][NS][E][kThreads]
  float* scratch;  // [B·H][NV][kStretch+1][E][kThreads]
  float* dq_part;  // [NV][B·T·H][K]
  float* dk_part;  // [NV][B·T·H][K]
  float* dg_part;  // gla: [NV][B·T·H][K]
  float* db_part;  // deltanet: [NV][B·T·H]
  float* den;      // la: [B·H][T] φ(q)ᵀz + ε
  float* dn;       // la: [B·H][T] Σ_j do_j n_j (zeroed before the forward)
  int64_t B, T, H, V;
  int64_t NV;  // V / kVT
  int64_t NS;  // ceil(T / kStretch)
  float scale;
  double scale_f64;  // the fp64 oracle's (recurrent_f64.cuh)
  int normalize;
  int l2norm;
};

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

__device__ __forceinline__ float phi(float x) { return x > 0.f ? x + 1.f : expf(x); }
__device__ __forceinline__ float dphi(float x) { return x > 0.f ? 1.f : expf(x); }

// Sums each x[n] over the 16 lanes of a K-slice group; every lane gets the totals.
template <int N>
__device__ __forceinline__ void reduce16(float (&x)[N]) {
#pragma unroll
  for (int off = 8; off > 0; off >>= 1) {
#pragma unroll
    for (int n = 0; n < N; ++n) x[n] += __shfl_xor_sync(0xffffffffu, x[n], off);
  }
}

__device__ __forceinline__ float reduce16(float x) {
#pragma unroll
  for (int off = 8; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
  return x;
}

// One token's inputs as one thread sees them.
template <int VAR, int K>
struct Tok {
  static constexpr int R = K / kKS;
  float q[R], k[R], g[R], v[kC], d[kC];
  float beta;
};

// Loads q (when Q), k, g, v, beta (and do when DO) of token t; l2-normalizes deltanet's q, k.
template <int VAR, typename T, int K, bool Q, bool DO>
__device__ __forceinline__ void load_tok(const Args& a, int64_t b, int64_t h, int64_t t, int ks,
                                         int64_t j0, Tok<VAR, K>& x) {
  constexpr int R = K / kKS;
  const int64_t bth = (b * a.T + t) * a.H + h;
  const int64_t kb = bth * K + ks, vb = bth * a.V + j0;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    x.k[r] = Io<T>::load(a.k, kb + kKS * r);
    if (Q) x.q[r] = Io<T>::load(a.q, kb + kKS * r);
    if (VAR == kGla) x.g[r] = expf(Io<T>::load(a.g, kb + kKS * r));
  }
#pragma unroll
  for (int c = 0; c < kC; ++c) {
    x.v[c] = Io<T>::load(a.v, vb + c);
    if (DO) x.d[c] = Io<T>::load(a.dout, vb + c);
  }
  if (VAR == kDeltanet) {
    x.beta = Io<T>::load(a.beta, bth);
    if (a.l2norm) {
      float ss[2] = {0.f, 0.f};
#pragma unroll
      for (int r = 0; r < R; ++r) {
        ss[0] = fmaf(x.k[r], x.k[r], ss[0]);
        if (Q) ss[1] = fmaf(x.q[r], x.q[r], ss[1]);
      }
      reduce16(ss);
      const float ik = 1.f / sqrtf(ss[0] + kL2Eps), iq = 1.f / sqrtf(ss[1] + kL2Eps);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        x.k[r] *= ik;
        if (Q) x.q[r] *= iq;
      }
    }
  }
  if (VAR == kLa) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      x.k[r] = phi(x.k[r]);
      if (Q) x.q[r] = phi(x.q[r]);
    }
  }
}

// Advances the state over one token (x holds φ(k) for la, a = exp(g) in g for gla).
template <int VAR, int K>
__device__ __forceinline__ void advance(float (&S)[K / kKS][kC], float (&z)[K / kKS],
                                        const Tok<VAR, K>& x) {
  constexpr int R = K / kKS;
  if (VAR == kLa) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      z[r] += x.k[r];
#pragma unroll
      for (int c = 0; c < kC; ++c) S[r][c] = fmaf(x.k[r], x.v[c], S[r][c]);
    }
  } else if (VAR == kGla) {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int c = 0; c < kC; ++c) S[r][c] = fmaf(x.g[r], S[r][c], x.k[r] * x.v[c]);
  } else {
    float u[kC];
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      float acc = 0.f;
#pragma unroll
      for (int r = 0; r < R; ++r) acc = fmaf(S[r][c], x.k[r], acc);
      u[c] = acc;
    }
    reduce16(u);
#pragma unroll
    for (int c = 0; c < kC; ++c) u[c] = x.beta * (x.v[c] - u[c]);
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int c = 0; c < kC; ++c) S[r][c] = fmaf(x.k[r], u[c], S[r][c]);
  }
}

template <int VAR, int K>
__device__ __forceinline__ void save_slots(float* p, const float (&S)[K / kKS][kC],
                                           const float (&z)[K / kKS]) {
  constexpr int R = K / kKS;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < kC; ++c) p[(r * kC + c) * kThreads] = S[r][c];
  if (VAR == kLa) {
#pragma unroll
    for (int r = 0; r < R; ++r) p[(R * kC + r) * kThreads] = z[r];
  }
}

template <int VAR, int K>
__device__ __forceinline__ void load_slots(const float* p, float (&S)[K / kKS][kC],
                                           float (&z)[K / kKS]) {
  constexpr int R = K / kKS;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < kC; ++c) S[r][c] = p[(r * kC + c) * kThreads];
  if (VAR == kLa) {
#pragma unroll
    for (int r = 0; r < R; ++r) z[r] = p[(R * kC + r) * kThreads];
  }
}

// Writes val[c] to column j0+c of row `base`, one lane per column.
template <typename T>
__device__ __forceinline__ void store_cols(void* p, int64_t base, int ks,
                                           const float (&val)[kC]) {
#pragma unroll
  for (int c = 0; c < kC; ++c) {
    if (ks == c) Io<T>::store(p, base + c, val[c]);
  }
}

// Forward: o, final_state (and final_z); with a.ckpt also the backward's checkpoints (and for
// la the denominators and Σ do·n).
template <int VAR, typename T, int K>
__global__ void __launch_bounds__(kThreads) fwd_kernel(const Args a) {
  constexpr int R = K / kKS;
  constexpr int E = Slots<VAR, K>::E;
  const int tid = threadIdx.x, ks = tid % kKS, cg = tid / kKS;
  const int64_t bh = blockIdx.x, tile = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t j0 = tile * kVT + cg * kC;

  float S[R][kC], z[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t i = ks + kKS * r;
#pragma unroll
    for (int c = 0; c < kC; ++c) S[r][c] = a.h0 ? a.h0[(bh * K + i) * a.V + j0 + c] : 0.f;
    z[r] = (VAR == kLa && a.z0) ? a.z0[bh * K + i] : 0.f;
  }
  const bool bwd = a.ckpt != nullptr;
  float* ck = bwd ? a.ckpt + (bh * a.NV + tile) * a.NS * (int64_t)E * kThreads + tid : nullptr;
  const bool want_dn = VAR == kLa && bwd && a.normalize;

  // Token t+1's inputs are loaded while token t is computed (they do not depend on S).
  auto load = [&](int64_t t, Tok<VAR, K>& x) {
    if (want_dn) {
      load_tok<VAR, T, K, true, true>(a, b, h, t, ks, j0, x);
    } else {
      load_tok<VAR, T, K, true, false>(a, b, h, t, ks, j0, x);
    }
  };
  Tok<VAR, K> nxt;
  load(0, nxt);
  for (int64_t t = 0; t < a.T; ++t) {
    if (bwd && t % kStretch == 0) save_slots<VAR, K>(ck + (t / kStretch) * E * kThreads, S, z);
    const Tok<VAR, K> x = nxt;
    if (t + 1 < a.T) load(t + 1, nxt);
    advance<VAR, K>(S, z, x);
    float out[kC + 1];
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      float acc = 0.f;
#pragma unroll
      for (int r = 0; r < R; ++r) acc = fmaf(x.q[r], S[r][c], acc);
      out[c] = acc;
    }
    out[kC] = 0.f;
    if (VAR == kLa && a.normalize) {
#pragma unroll
      for (int r = 0; r < R; ++r) out[kC] = fmaf(x.q[r], z[r], out[kC]);
    }
    reduce16(out);
    const int64_t bt = bh * a.T + t;
    float val[kC];
    if (VAR == kLa && a.normalize) {
      const float den = out[kC] + kLaEps;
      const float inv = 1.f / den;
#pragma unroll
      for (int c = 0; c < kC; ++c) val[c] = out[c] * inv;
      if (bwd) {
        if (tile == 0 && tid == 0) a.den[bt] = den;
        if (want_dn && ks == 0) {
          float p = 0.f;
#pragma unroll
          for (int c = 0; c < kC; ++c) p = fmaf(x.d[c], out[c], p);
          atomicAdd(a.dn + bt, p);
        }
      }
    } else {
#pragma unroll
      for (int c = 0; c < kC; ++c) val[c] = out[c] * a.scale;
    }
    store_cols<T>(a.o, ((b * a.T + t) * a.H + h) * a.V + j0, ks, val);
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t i = ks + kKS * r;
#pragma unroll
    for (int c = 0; c < kC; ++c) a.final_state[(bh * K + i) * a.V + j0 + c] = S[r][c];
    if (VAR == kLa && a.final_z && tile == 0 && cg == 0) a.final_z[bh * K + i] = z[r];
  }
}

// The reverse sweep (see the top of the file).
template <int VAR, typename T, int K>
__global__ void __launch_bounds__(kThreads) bwd_kernel(const Args a) {
  constexpr int R = K / kKS;
  constexpr int E = Slots<VAR, K>::E;
  constexpr int NQ = VAR == kGla ? 3 : 2;                  // dq, dk (, dg)
  constexpr int NR = NQ * K + (VAR == kDeltanet ? 1 : 0);  // (, dβ)
  __shared__ float red[2][kWarps][NR];
  const int tid = threadIdx.x, ks = tid % kKS, cg = tid / kKS;
  const int lane = tid % 32, warp = tid / 32;
  const int64_t bh = blockIdx.x, tile = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t j0 = tile * kVT + cg * kC;
  const bool first = tile == 0 && cg == 0;  // adds the column-independent terms once
  const int64_t BTH = a.B * a.T * a.H;

  float dS[R][kC], dz[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    dz[r] = 0.f;
#pragma unroll
    for (int c = 0; c < kC; ++c) dS[r][c] = 0.f;
  }
  const int64_t blk = bh * a.NV + tile;
  const float* ck = a.ckpt + blk * a.NS * (int64_t)E * kThreads + tid;
  float* sc = a.scratch + blk * (int64_t)(kStretch + 1) * E * kThreads + tid;
  constexpr int64_t kSlot = (int64_t)E * kThreads;

  for (int64_t s = a.NS - 1; s >= 0; --s) {
    const int64_t t0 = s * kStretch;
    const int64_t t1 = t0 + kStretch < a.T ? t0 + kStretch : a.T;
    float S[R][kC], z[R];
    load_slots<VAR, K>(ck + s * kSlot, S, z);
    if (VAR != kLa) save_slots<VAR, K>(sc, S, z);
    for (int64_t t = t0; t < t1; ++t) {
      Tok<VAR, K> x;
      load_tok<VAR, T, K, false, false>(a, b, h, t, ks, j0, x);
      advance<VAR, K>(S, z, x);
      if (VAR == kLa || t + 1 < t1) save_slots<VAR, K>(sc + (t - t0 + 1) * kSlot, S, z);
    }
    // S holds S_{t1-1}. For gla/deltanet, Sp is S_{t-1}, loaded from the scratch each step,
    // and becomes the next step's S_t.
    for (int64_t t = t1 - 1; t >= t0; --t) {
      Tok<VAR, K> x;
      load_tok<VAR, T, K, true, true>(a, b, h, t, ks, j0, x);
      const int64_t bt = bh * a.T + t;
      const int64_t bth = (b * a.T + t) * a.H + h;
      float Sp[R][kC], zp[R];
      if (VAR == kLa) {
        load_slots<VAR, K>(sc + (t - t0 + 1) * kSlot, S, z);  // S_t, z_t
      } else {
        load_slots<VAR, K>(sc + (t - t0) * kSlot, Sp, zp);  // S_{t-1}
      }
      float vals[NQ][R];
      float dv[kC];
      float db = 0.f;
      if (VAR == kLa) {
        float dn[kC], dd = 0.f;
        if (a.normalize) {
          const float den = a.den[bt];
          const float inv = 1.f / den;
#pragma unroll
          for (int c = 0; c < kC; ++c) dn[c] = x.d[c] * inv;
          dd = -a.dn[bt] * inv * inv;
        } else {
#pragma unroll
          for (int c = 0; c < kC; ++c) dn[c] = a.scale * x.d[c];
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float acc = first ? dd * z[r] : 0.f;
#pragma unroll
          for (int c = 0; c < kC; ++c) {
            acc = fmaf(S[r][c], dn[c], acc);
            dS[r][c] = fmaf(x.q[r], dn[c], dS[r][c]);
          }
          vals[0][r] = acc;
          dz[r] = fmaf(dd, x.q[r], dz[r]);
          float acck = first ? dz[r] : 0.f;
#pragma unroll
          for (int c = 0; c < kC; ++c) acck = fmaf(dS[r][c], x.v[c], acck);
          vals[1][r] = acck;
        }
#pragma unroll
        for (int c = 0; c < kC; ++c) {
          float acc = 0.f;
#pragma unroll
          for (int r = 0; r < R; ++r) acc = fmaf(dS[r][c], x.k[r], acc);
          dv[c] = acc;
        }
        reduce16(dv);
      } else if (VAR == kGla) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float accq = 0.f, acck = 0.f, accg = 0.f;
          const float qs = a.scale * x.q[r];
#pragma unroll
          for (int c = 0; c < kC; ++c) {
            accq = fmaf(S[r][c], x.d[c], accq);
            dS[r][c] = fmaf(qs, x.d[c], dS[r][c]);
            acck = fmaf(dS[r][c], x.v[c], acck);
            accg = fmaf(dS[r][c], Sp[r][c], accg);
          }
          vals[0][r] = a.scale * accq;
          vals[1][r] = acck;
          vals[2 % NQ][r] = x.g[r] * accg;
        }
#pragma unroll
        for (int c = 0; c < kC; ++c) {
          float acc = 0.f;
#pragma unroll
          for (int r = 0; r < R; ++r) acc = fmaf(dS[r][c], x.k[r], acc);
          dv[c] = acc;
        }
        reduce16(dv);
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int c = 0; c < kC; ++c) dS[r][c] *= x.g[r];
      } else {
        // u = v − S_{t−1}ᵀk; w = dSᵀk after adding scale·q doᵀ.
        float u[kC], w[kC];
#pragma unroll
        for (int c = 0; c < kC; ++c) {
          float acc = 0.f;
#pragma unroll
          for (int r = 0; r < R; ++r) acc = fmaf(Sp[r][c], x.k[r], acc);
          u[c] = acc;
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float accq = 0.f;
          const float qs = a.scale * x.q[r];
#pragma unroll
          for (int c = 0; c < kC; ++c) {
            accq = fmaf(S[r][c], x.d[c], accq);
            dS[r][c] = fmaf(qs, x.d[c], dS[r][c]);
          }
          vals[0][r] = a.scale * accq;
        }
#pragma unroll
        for (int c = 0; c < kC; ++c) {
          float acc = 0.f;
#pragma unroll
          for (int r = 0; r < R; ++r) acc = fmaf(dS[r][c], x.k[r], acc);
          w[c] = acc;
        }
        reduce16(u);
        reduce16(w);
#pragma unroll
        for (int c = 0; c < kC; ++c) {
          u[c] = x.v[c] - u[c];
          db = fmaf(w[c], u[c], db);
          dv[c] = x.beta * w[c];  // du
        }
        if (ks != 0) db = 0.f;  // one lane per column group contributes
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float acc1 = 0.f, acc2 = 0.f;
#pragma unroll
          for (int c = 0; c < kC; ++c) {
            acc1 = fmaf(dS[r][c], u[c], acc1);
            acc2 = fmaf(Sp[r][c], dv[c], acc2);
            dS[r][c] = fmaf(-x.k[r], dv[c], dS[r][c]);
          }
          vals[1][r] = x.beta * acc1 - acc2;
        }
      }
      if (a.dv) store_cols<T>(a.dv, bth * a.V + j0, ks, dv);

      // Sums over the block's columns: the two column groups of a warp by shuffle, then the
      // eight warps through shared memory.
      const int buf = static_cast<int>(t & 1);
#pragma unroll
      for (int n = 0; n < NQ; ++n)
#pragma unroll
        for (int r = 0; r < R; ++r) vals[n][r] += __shfl_xor_sync(0xffffffffu, vals[n][r], 16);
      if (VAR == kDeltanet) db += __shfl_xor_sync(0xffffffffu, db, 16);
      if (lane < kKS) {
#pragma unroll
        for (int n = 0; n < NQ; ++n)
#pragma unroll
          for (int r = 0; r < R; ++r) red[buf][warp][n * K + lane + kKS * r] = vals[n][r];
        // db is nonzero on lane ks = 0 of each column group only; the shuffle above added the
        // warp's second group into lane 0.
        if (VAR == kDeltanet && lane == 0) red[buf][warp][NQ * K] = db;
      }
      __syncthreads();
      for (int e = tid; e < NR; e += kThreads) {
        float acc = 0.f;
#pragma unroll
        for (int w2 = 0; w2 < kWarps; ++w2) acc += red[buf][w2][e];
        const int n = e / K, i = e % K;
        if (n == 0) {
          a.dq_part[(tile * BTH + bth) * K + i] = acc;
        } else if (n == 1) {
          a.dk_part[(tile * BTH + bth) * K + i] = acc;
        } else if (VAR == kGla && n == 2) {
          a.dg_part[(tile * BTH + bth) * K + i] = acc;
        } else {
          a.db_part[tile * BTH + bth] = acc;
        }
      }
      if (VAR != kLa) {
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int c = 0; c < kC; ++c) S[r][c] = Sp[r][c];
      }
    }
  }
  if (a.dh0) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t i = ks + kKS * r;
#pragma unroll
      for (int c = 0; c < kC; ++c) a.dh0[(bh * K + i) * a.V + j0 + c] = dS[r][c];
    }
  }
  if (VAR == kLa && a.dz0 && first) {
#pragma unroll
    for (int r = 0; r < R; ++r) a.dz0[bh * K + ks + kKS * r] = a.normalize ? dz[r] : 0.f;
  }
}

// Sums the V-tile partials and writes dq, dk (, dg, dβ) at the storage dtype; one warp per
// token.
template <int VAR, typename T, int K>
__global__ void __launch_bounds__(kThreads) finalize_kernel(const Args a) {
  constexpr int P = K / 32;
  const int64_t BTH = a.B * a.T * a.H;
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (w >= BTH) return;
  float dq[P], dk[P], dg[P];
#pragma unroll
  for (int m = 0; m < P; ++m) {
    const int64_t i = w * K + lane + 32 * m;
    dq[m] = dk[m] = dg[m] = 0.f;
    for (int64_t tile = 0; tile < a.NV; ++tile) {
      dq[m] += a.dq_part[tile * BTH * K + i];
      dk[m] += a.dk_part[tile * BTH * K + i];
      if (VAR == kGla) dg[m] += a.dg_part[tile * BTH * K + i];
    }
  }
  if (VAR == kLa) {
#pragma unroll
    for (int m = 0; m < P; ++m) {
      const int64_t i = w * K + lane + 32 * m;
      dq[m] *= dphi(Io<T>::load(a.q, i));
      dk[m] *= dphi(Io<T>::load(a.k, i));
    }
  }
  if (VAR == kDeltanet && a.l2norm) {
    float xq[P], xk[P], s[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int m = 0; m < P; ++m) {
      const int64_t i = w * K + lane + 32 * m;
      xq[m] = Io<T>::load(a.q, i);
      xk[m] = Io<T>::load(a.k, i);
      s[0] = fmaf(xq[m], xq[m], s[0]);
      s[1] = fmaf(xk[m], xk[m], s[1]);
      s[2] = fmaf(xq[m], dq[m], s[2]);
      s[3] = fmaf(xk[m], dk[m], s[3]);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
#pragma unroll
      for (int n = 0; n < 4; ++n) s[n] += __shfl_xor_sync(0xffffffffu, s[n], off);
    // y = x/n, dx = (dy − y(y·dy))/n = (dy − x (x·dy)/n²)/n.
    const float nq = sqrtf(s[0] + kL2Eps), nk = sqrtf(s[1] + kL2Eps);
    const float cq = s[2] / (nq * nq), ck = s[3] / (nk * nk);
#pragma unroll
    for (int m = 0; m < P; ++m) {
      dq[m] = (dq[m] - xq[m] * cq) / nq;
      dk[m] = (dk[m] - xk[m] * ck) / nk;
    }
  }
#pragma unroll
  for (int m = 0; m < P; ++m) {
    const int64_t i = w * K + lane + 32 * m;
    if (a.dq) Io<T>::store(a.dq, i, dq[m]);
    if (a.dk) Io<T>::store(a.dk, i, dk[m]);
    if (VAR == kGla && a.dg) Io<T>::store(a.dg, i, dg[m]);
  }
  if (VAR == kDeltanet && a.dbeta && lane == 0) {
    float acc = 0.f;
    for (int64_t tile = 0; tile < a.NV; ++tile) acc += a.db_part[tile * BTH + w];
    Io<T>::store(a.dbeta, w, acc);
  }
}

}  // namespace rec
}  // namespace lak
