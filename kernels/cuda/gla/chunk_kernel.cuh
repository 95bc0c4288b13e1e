// gla kernels, chunked, templated on storage dtype T, head dim D (= K = V) and chunk size C.
//
// Per (b,h): S_t = diag(exp g_t) S_{t-1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t. Within a chunk G is
// the inclusive cumsum of g and Γ its last row; every exponential is of a difference <= 0.
//
// Forward (segments of `cps` chunks, grid = segments × B·H):
//   1. seg_state: local state of each segment from zero, L = Σ decayed K̃ᵀV, and the segment's
//      total log decay Σ Γ per key dim (kept in log space, fp32).
//   2. carry:     per (b,h) and state element, the exclusive scan S ← exp(ΣΓ) S + L over
//                 segments seeded with h0; the total is final_state.
//   3. output:    O = scale · [(Q ⊙ e^G) S + A V], A_ij = Σ_l q_il k_jl e^{G_il − G_jl} (j <= i),
//                 then S ← diag(e^Γ) S + (K ⊙ e^{Γ−G})ᵀ V inside the segment.
// Backward (one chunk per segment, so the carries are every chunk's starting state):
//   1–3 as above (the backward also writes o and final_state),
//   4. dstate_local: scale · (Q ⊙ e^G)ᵀ dO per chunk,
//   5. dcarry:       reverse exclusive scan dS ← diag(e^Γ) dS + local, giving ∂ℓ/∂S after every
//                    chunk; the total is dh0,
//   6. bwd_chunk:    dq, dk, dv, dg of each chunk from its S, dS (docs/ops.md, gla).
#pragma once

#include "block.cuh"

namespace lak {
namespace gla {

using blk::kThreads;

struct Args {
  const void* q;
  const void* k;
  const void* v;
  const void* g;
  const void* dout;
  const float* h0;
  void* o;
  float* final_state;
  void* dq;
  void* dk;
  void* dv;
  void* dg;
  float* dh0;
  float* st;    // [B*H][nseg][D*D] segment summaries, then carries (starting states)
  float* gsum;  // [B*H][nseg][D] segment total log decays
  float* dst;   // [B*H][n_chunks][D*D] backward: local dS sums, then dS after each chunk
  int64_t B, T, H;
  int64_t n_chunks, cps, nseg;
  float scale;
};

template <int D, int C>
struct Smem {
  static constexpr int kLd = D + 1;
  static constexpr int kLdA = C + 1;
  static constexpr bool kStateInSmem = D <= 64;
  static constexpr int kLdS = kStateInSmem ? D + 1 : D;
  static constexpr size_t kStateBytes = sizeof(float) * (2 * C * kLd + C * D);
  static constexpr size_t kOutBytes = sizeof(float) * (3 * C * kLd + C * D + C * kLdA + D * D);
  static constexpr size_t kDLocalBytes = sizeof(float) * (2 * C * kLd + C * D);
  static constexpr size_t kBwdBytes =
      sizeof(float) * (5 * C * kLd + 2 * C * kLdA + (kStateInSmem ? 2 * D * kLdS : 0));
};

// A_ij (j <= i, else 0) for i = ty + 16r, j = tx + 16c from raw Q, K and cumulative G tiles.
template <int D, int C>
__device__ __forceinline__ void causal_scores(float (&acc)[C / 16][C / 16], const float* sQ,
                                              const float* sK, const float* sG) {
  constexpr int RC = C / 16;
  constexpr int ld = D + 1;
  const int x = blk::tx(), y = blk::ty();
  blk::zero(acc);
#pragma unroll 2
  for (int l = 0; l < D; ++l) {
    float qi[RC], gi[RC], kj[RC], gj[RC];
#pragma unroll
    for (int r = 0; r < RC; ++r) {
      qi[r] = sQ[(y + 16 * r) * ld + l];
      gi[r] = sG[(y + 16 * r) * ld + l];
      kj[r] = sK[(x + 16 * r) * ld + l];
      gj[r] = sG[(x + 16 * r) * ld + l];
    }
#pragma unroll
    for (int r = 0; r < RC; ++r)
#pragma unroll
      for (int c = 0; c <= r; ++c)
        acc[r][c] = fmaf(qi[r] * kj[c], __expf(fminf(gi[r] - gj[c], 0.f)), acc[r][c]);
  }
#pragma unroll
  for (int r = 0; r < RC; ++r)
#pragma unroll
    for (int c = 0; c < RC; ++c)
      if (x + 16 * c > y + 16 * r) acc[r][c] = 0.f;
}

__device__ __forceinline__ int64_t row_index(const Args& a, int64_t b, int64_t h, int64_t t,
                                             int D) {
  return ((b * a.T + t) * a.H + h) * D;
}

// 1. Local state and total log decay of each segment.
template <typename T, int D, int C>
__global__ void __launch_bounds__(kThreads) seg_state_kernel(Args a) {
  constexpr int R = D / 16;
  constexpr int ld = Smem<D, C>::kLd;
  extern __shared__ float sm[];
  float* sK = sm;
  float* sG = sK + C * ld;
  float* sV = sG + C * ld;  // C x D
  const int64_t seg = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int x = blk::tx(), y = blk::ty();
  float acc[R][R], gtot[R];
  blk::zero(acc);
#pragma unroll
  for (int r = 0; r < R; ++r) gtot[r] = 0.f;
  const int64_t c0 = seg * a.cps;
  const int64_t c1 = min(c0 + a.cps, a.n_chunks);
  for (int64_t ch = c0; ch < c1; ++ch) {
    const int64_t t0 = ch * C;
    blk::load_rows<T, D, C>(sK, ld, a.k, b, h, t0, a.T, a.H, blk::Ident());
    blk::load_rows<T, D, C>(sG, ld, a.g, b, h, t0, a.T, a.H, blk::Ident());
    blk::load_rows<T, D, C>(sV, D, a.v, b, h, t0, a.T, a.H, blk::Ident());
    __syncthreads();
    blk::cumsum_rows<D, C>(sG, ld);
    __syncthreads();
    for (int idx = threadIdx.x; idx < C * D; idx += kThreads) {
      const int row = idx / D, col = idx % D;
      sK[row * ld + col] *= __expf(sG[(C - 1) * ld + col] - sG[row * ld + col]);
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float gl = sG[(C - 1) * ld + y + 16 * r];
      gtot[r] += gl;
      const float dec = __expf(gl);
#pragma unroll
      for (int c = 0; c < R; ++c) acc[r][c] *= dec;
    }
    blk::mm<R, R, C>(
        acc, [&](int l, int t) { return sK[t * ld + l]; },
        [&](int t, int j) { return sV[t * D + j]; });
    __syncthreads();
  }
  float* out = a.st + (bh * a.nseg + seg) * (int64_t)(D * D);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < R; ++c) out[(y + 16 * r) * D + x + 16 * c] = acc[r][c];
  if (x == 0) {
#pragma unroll
    for (int r = 0; r < R; ++r) a.gsum[(bh * a.nseg + seg) * D + y + 16 * r] = gtot[r];
  }
}

// 2. Exclusive scan over segments seeded with h0; the total is final_state.
template <int D>
__global__ void __launch_bounds__(kThreads) carry_kernel(Args a) {
  constexpr int E = D * D;
  const int64_t idx = (int64_t)blockIdx.x * kThreads + threadIdx.x;
  const int64_t bh = idx / E;
  const int e = (int)(idx % E);
  if (bh >= a.B * a.H) return;
  const int l = e / D;
  float carry = a.h0 != nullptr ? a.h0[bh * E + e] : 0.f;
  float* p = a.st + bh * a.nseg * E + e;
  const float* gs = a.gsum + bh * a.nseg * D + l;
  int64_t s = 0;
  for (; s + 4 <= a.nseg; s += 4) {
    float x[4], d[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      x[u] = p[(s + u) * E];
      d[u] = expf(gs[(s + u) * D]);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      p[(s + u) * E] = carry;
      carry = fmaf(d[u], carry, x[u]);
    }
  }
  for (; s < a.nseg; ++s) {
    const float x = p[s * E];
    p[s * E] = carry;
    carry = fmaf(expf(gs[s * D]), carry, x);
  }
  if (a.final_state != nullptr) a.final_state[bh * E + e] = carry;
}

// 3. Outputs of one segment, chunk by chunk, carrying S in shared memory.
template <typename T, int D, int C>
__global__ void __launch_bounds__(kThreads) output_kernel(Args a) {
  constexpr int R = D / 16;
  constexpr int RC = C / 16;
  constexpr int ld = Smem<D, C>::kLd;
  constexpr int lda = Smem<D, C>::kLdA;
  extern __shared__ float sm[];
  float* sQ = sm;
  float* sK = sQ + C * ld;
  float* sG = sK + C * ld;
  float* sV = sG + C * ld;   // C x D
  float* sA = sV + C * D;    // C x lda
  float* sS = sA + C * lda;  // D x D
  const int64_t seg = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int x = blk::tx(), y = blk::ty();
  const float* carry = a.st + (bh * a.nseg + seg) * (int64_t)(D * D);
  for (int i = threadIdx.x; i < D * D; i += kThreads) sS[i] = carry[i];

  const int64_t c0 = seg * a.cps;
  const int64_t c1 = min(c0 + a.cps, a.n_chunks);
  for (int64_t ch = c0; ch < c1; ++ch) {
    const int64_t t0 = ch * C;
    blk::load_rows<T, D, C>(sQ, ld, a.q, b, h, t0, a.T, a.H, blk::Ident());
    blk::load_rows<T, D, C>(sK, ld, a.k, b, h, t0, a.T, a.H, blk::Ident());
    blk::load_rows<T, D, C>(sG, ld, a.g, b, h, t0, a.T, a.H, blk::Ident());
    blk::load_rows<T, D, C>(sV, D, a.v, b, h, t0, a.T, a.H, blk::Ident());
    __syncthreads();
    blk::cumsum_rows<D, C>(sG, ld);
    __syncthreads();
    {
      float acc[RC][RC];
      causal_scores<D, C>(acc, sQ, sK, sG);
#pragma unroll
      for (int r = 0; r < RC; ++r)
#pragma unroll
        for (int c = 0; c < RC; ++c) sA[(y + 16 * r) * lda + x + 16 * c] = acc[r][c];
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < C * D; idx += kThreads) {
      const int row = idx / D, col = idx % D;
      const float gv = sG[row * ld + col];
      sQ[row * ld + col] *= __expf(gv);
      sK[row * ld + col] *= __expf(sG[(C - 1) * ld + col] - gv);
    }
    __syncthreads();
    float acc_o[RC][R];
    blk::zero(acc_o);
    blk::mm<RC, R, D>(
        acc_o, [&](int i, int l) { return sQ[i * ld + l]; },
        [&](int l, int j) { return sS[l * D + j]; });
    blk::mm<RC, R, C>(
        acc_o, [&](int i, int j) { return sA[i * lda + j]; },
        [&](int j, int t) { return sV[j * D + t]; });
#pragma unroll
    for (int r = 0; r < RC; ++r) {
      const int64_t t = t0 + y + 16 * r;
      if (t >= a.T) continue;
      const int64_t base = row_index(a, b, h, t, D);
#pragma unroll
      for (int c = 0; c < R; ++c) blk::Io<T>::store(a.o, base + x + 16 * c, acc_o[r][c] * a.scale);
    }
    if (ch + 1 < c1) {
      float acc_s[R][R];
      blk::zero(acc_s);
      blk::mm<R, R, C>(
          acc_s, [&](int l, int t) { return sK[t * ld + l]; },
          [&](int t, int j) { return sV[t * D + j]; });
      __syncthreads();  // everyone is done reading sS
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int l = y + 16 * r;
        const float dec = __expf(sG[(C - 1) * ld + l]);
#pragma unroll
        for (int c = 0; c < R; ++c) {
          float* s = &sS[l * D + x + 16 * c];
          *s = fmaf(dec, *s, acc_s[r][c]);
        }
      }
    }
    __syncthreads();
  }
}

// 4. scale · (Q ⊙ e^G)ᵀ dO of every chunk.
template <typename T, int D, int C>
__global__ void __launch_bounds__(kThreads) dstate_local_kernel(Args a) {
  constexpr int R = D / 16;
  constexpr int ld = Smem<D, C>::kLd;
  extern __shared__ float sm[];
  float* sQ = sm;
  float* sG = sQ + C * ld;
  float* sO = sG + C * ld;  // C x D
  const int64_t ch = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int x = blk::tx(), y = blk::ty();
  const int64_t t0 = ch * C;
  blk::load_rows<T, D, C>(sQ, ld, a.q, b, h, t0, a.T, a.H, blk::Ident());
  blk::load_rows<T, D, C>(sG, ld, a.g, b, h, t0, a.T, a.H, blk::Ident());
  blk::load_rows<T, D, C>(sO, D, a.dout, b, h, t0, a.T, a.H, blk::Ident());
  __syncthreads();
  blk::cumsum_rows<D, C>(sG, ld);
  __syncthreads();
  for (int idx = threadIdx.x; idx < C * D; idx += kThreads) {
    const int row = idx / D, col = idx % D;
    sQ[row * ld + col] *= __expf(sG[row * ld + col]);
  }
  __syncthreads();
  float acc[R][R];
  blk::zero(acc);
  blk::mm<R, R, C>(
      acc, [&](int l, int t) { return sQ[t * ld + l]; },
      [&](int t, int j) { return sO[t * D + j]; });
  float* out = a.dst + (bh * a.n_chunks + ch) * (int64_t)(D * D);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < R; ++c) out[(y + 16 * r) * D + x + 16 * c] = acc[r][c] * a.scale;
}

// 5. Reverse exclusive scan over chunks: dS after each chunk; the total is dh0.
template <int D>
__global__ void __launch_bounds__(kThreads) dcarry_kernel(Args a) {
  constexpr int E = D * D;
  const int64_t idx = (int64_t)blockIdx.x * kThreads + threadIdx.x;
  const int64_t bh = idx / E;
  const int e = (int)(idx % E);
  if (bh >= a.B * a.H) return;
  const int l = e / D;
  const int64_t n = a.n_chunks;
  float* p = a.dst + bh * n * E + e;
  const float* gs = a.gsum + bh * n * D + l;
  float carry = 0.f;
  int64_t c = n - 1;
  for (; c >= 3; c -= 4) {
    float x[4], d[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      x[u] = p[(c - u) * E];
      d[u] = expf(gs[(c - u) * D]);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      p[(c - u) * E] = carry;
      carry = fmaf(d[u], carry, x[u]);
    }
  }
  for (; c >= 0; --c) {
    const float x = p[c * E];
    p[c * E] = carry;
    carry = fmaf(expf(gs[c * D]), carry, x);
  }
  if (a.dh0 != nullptr) a.dh0[bh * E + e] = carry;
}

// 6. Gradients of one chunk from its starting state S and dS = ∂ℓ/∂S after it.
template <typename T, int D, int C>
__global__ void __launch_bounds__(kThreads) bwd_chunk_kernel(Args a) {
  constexpr int R = D / 16;
  constexpr int RC = C / 16;
  constexpr int ld = Smem<D, C>::kLd;
  constexpr int lda = Smem<D, C>::kLdA;
  constexpr int lds = Smem<D, C>::kLdS;
  constexpr int E = D * D;
  extern __shared__ float sm[];
  float* sQ = sm;
  float* sK = sQ + C * ld;
  float* sG = sK + C * ld;
  float* sV = sG + C * ld;
  float* sO = sV + C * ld;  // dO
  float* sA = sO + C * ld;
  float* sDA = sA + C * lda;
  const int64_t ch = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t n = a.n_chunks;
  const int x = blk::tx(), y = blk::ty();
  const int64_t t0 = ch * C;
  const float* gS = a.st + (bh * n + ch) * (int64_t)E;
  const float* gdS = a.dst + (bh * n + ch) * (int64_t)E;
  const float* gSnew = ch + 1 < n ? a.st + (bh * n + ch + 1) * (int64_t)E : a.final_state + bh * E;
  const float* S;
  const float* dS;
  if constexpr (Smem<D, C>::kStateInSmem) {
    float* sS = sDA + C * lda;
    float* sdS = sS + D * lds;
    for (int i = threadIdx.x; i < E; i += kThreads) {
      sS[(i / D) * lds + i % D] = gS[i];
      sdS[(i / D) * lds + i % D] = gdS[i];
    }
    S = sS;
    dS = sdS;
  } else {
    S = gS;
    dS = gdS;
  }
  blk::load_rows<T, D, C>(sQ, ld, a.q, b, h, t0, a.T, a.H, blk::Ident());
  blk::load_rows<T, D, C>(sK, ld, a.k, b, h, t0, a.T, a.H, blk::Ident());
  blk::load_rows<T, D, C>(sG, ld, a.g, b, h, t0, a.T, a.H, blk::Ident());
  blk::load_rows<T, D, C>(sV, ld, a.v, b, h, t0, a.T, a.H, blk::Ident());
  blk::load_rows<T, D, C>(sO, ld, a.dout, b, h, t0, a.T, a.H, blk::Ident());
  __syncthreads();
  blk::cumsum_rows<D, C>(sG, ld);
  __syncthreads();

  // A and dA = scale · tril(dO Vᵀ).
  {
    float acc[RC][RC];
    causal_scores<D, C>(acc, sQ, sK, sG);
#pragma unroll
    for (int r = 0; r < RC; ++r)
#pragma unroll
      for (int c = 0; c < RC; ++c) sA[(y + 16 * r) * lda + x + 16 * c] = acc[r][c];
    blk::zero(acc);
    blk::mm<RC, RC, D>(
        acc, [&](int i, int t) { return sO[i * ld + t]; },
        [&](int t, int j) { return sV[j * ld + t]; });
#pragma unroll
    for (int r = 0; r < RC; ++r)
#pragma unroll
      for (int c = 0; c < RC; ++c) {
        const bool keep = x + 16 * c <= y + 16 * r;
        sDA[(y + 16 * r) * lda + x + 16 * c] = keep ? acc[r][c] * a.scale : 0.f;
      }
  }
  __syncthreads();

  // dQ (rows i = y + 16r, cols l = x + 16c).
  float dq[RC][R];
  blk::zero(dq);
  blk::mm<RC, R, D>(
      dq, [&](int i, int t) { return sO[i * ld + t]; },
      [&](int t, int l) { return S[l * lds + t]; });
  {
    float gi[RC][R];
#pragma unroll
    for (int r = 0; r < RC; ++r)
#pragma unroll
      for (int c = 0; c < R; ++c) {
        gi[r][c] = sG[(y + 16 * r) * ld + x + 16 * c];
        dq[r][c] *= a.scale * __expf(gi[r][c]);
      }
    const int jmax = y + 16 * (RC - 1);
    for (int j = 0; j <= jmax; ++j) {
      float kj[R], gj[R];
#pragma unroll
      for (int c = 0; c < R; ++c) {
        kj[c] = sK[j * ld + x + 16 * c];
        gj[c] = sG[j * ld + x + 16 * c];
      }
#pragma unroll
      for (int r = 0; r < RC; ++r) {
        if (j > y + 16 * r) continue;
        const float da = sDA[(y + 16 * r) * lda + j];
#pragma unroll
        for (int c = 0; c < R; ++c)
          dq[r][c] = fmaf(da * kj[c], __expf(fminf(gi[r][c] - gj[c], 0.f)), dq[r][c]);
      }
    }
  }

  // dK (rows j = y + 16r, cols l = x + 16c).
  float dk[RC][R];
  blk::zero(dk);
  blk::mm<RC, R, D>(
      dk, [&](int j, int t) { return sV[j * ld + t]; },
      [&](int t, int l) { return dS[l * lds + t]; });
  {
    float gj[RC][R];
#pragma unroll
    for (int r = 0; r < RC; ++r)
#pragma unroll
      for (int c = 0; c < R; ++c) {
        const int l = x + 16 * c;
        gj[r][c] = sG[(y + 16 * r) * ld + l];
        dk[r][c] *= __expf(sG[(C - 1) * ld + l] - gj[r][c]);
      }
    for (int i = y; i < C; ++i) {
      float qi[R], gi[R];
#pragma unroll
      for (int c = 0; c < R; ++c) {
        qi[c] = sQ[i * ld + x + 16 * c];
        gi[c] = sG[i * ld + x + 16 * c];
      }
#pragma unroll
      for (int r = 0; r < RC; ++r) {
        if (i < y + 16 * r) continue;
        const float da = sDA[i * lda + y + 16 * r];
#pragma unroll
        for (int c = 0; c < R; ++c)
          dk[r][c] = fmaf(da * qi[c], __expf(fminf(gi[c] - gj[r][c], 0.f)), dk[r][c]);
      }
    }
  }

  // dG = Q ⊙ dQ − K ⊙ dK; write dq, dk.
  float dgr[RC][R];
#pragma unroll
  for (int r = 0; r < RC; ++r) {
    const int i = y + 16 * r;
    const int64_t t = t0 + i;
    const int64_t base = t < a.T ? row_index(a, b, h, t, D) : -1;
#pragma unroll
    for (int c = 0; c < R; ++c) {
      const int l = x + 16 * c;
      dgr[r][c] = sQ[i * ld + l] * dq[r][c] - sK[i * ld + l] * dk[r][c];
      if (base >= 0) {
        if (a.dq != nullptr) blk::Io<T>::store(a.dq, base + l, dq[r][c]);
        if (a.dk != nullptr) blk::Io<T>::store(a.dk, base + l, dk[r][c]);
      }
    }
  }
  __syncthreads();  // done with raw Q, K and dA
#pragma unroll
  for (int r = 0; r < RC; ++r)
#pragma unroll
    for (int c = 0; c < R; ++c) sQ[(y + 16 * r) * ld + x + 16 * c] = dgr[r][c];
  for (int idx = threadIdx.x; idx < C * D; idx += kThreads) {
    const int row = idx / D, col = idx % D;
    sK[row * ld + col] *= __expf(sG[(C - 1) * ld + col] - sG[row * ld + col]);
  }
  __syncthreads();

  // dV = scale · Aᵀ dO + K̃ dS (rows j = y + 16r, cols t = x + 16c).
  {
    float dv[RC][R];
    blk::zero(dv);
    blk::mm<RC, R, C>(
        dv, [&](int j, int i) { return sA[i * lda + j]; },
        [&](int i, int t) { return sO[i * ld + t]; });
#pragma unroll
    for (int r = 0; r < RC; ++r)
#pragma unroll
      for (int c = 0; c < R; ++c) dv[r][c] *= a.scale;
    blk::mm<RC, R, D>(
        dv, [&](int j, int l) { return sK[j * ld + l]; },
        [&](int l, int t) { return dS[l * lds + t]; });
    if (a.dv != nullptr) {
#pragma unroll
      for (int r = 0; r < RC; ++r) {
        const int64_t t = t0 + y + 16 * r;
        if (t >= a.T) continue;
        const int64_t base = row_index(a, b, h, t, D);
#pragma unroll
        for (int c = 0; c < R; ++c) blk::Io<T>::store(a.dv, base + x + 16 * c, dv[r][c]);
      }
    }
  }

  // The Γ term: rowsum(S_new ⊙ dS) joins the last row, then the reverse cumsum gives dg.
  if (a.dg == nullptr) return;
  {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int l = warp; l < D; l += kThreads / 32) {
      float s = 0.f;
      for (int j = lane; j < D; j += 32) s = fmaf(gSnew[l * D + j], dS[l * lds + j], s);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      if (lane == 0) sQ[(C - 1) * ld + l] += s;
    }
  }
  __syncthreads();
  for (int col = threadIdx.x; col < D; col += kThreads) {
    float acc = 0.f;
    for (int r = C - 1; r >= 0; --r) {
      acc += sQ[r * ld + col];
      sQ[r * ld + col] = acc;
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < C * D; idx += kThreads) {
    const int row = idx / D, col = idx % D;
    const int64_t t = t0 + row;
    if (t < a.T) blk::Io<T>::store(a.dg, row_index(a, b, h, t, D) + col, sQ[row * ld + col]);
  }
}

}  // namespace gla
}  // namespace lak
