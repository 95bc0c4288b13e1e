// gla kernels, chunked, templated on storage dtype T, head dim D (= K = V) and chunk size C
// (16, 32 or 64: one instantiation each, chunk.cu).
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
//   1–2 as above (the backward writes final_state, not o),
//   4. dstate_local: scale · (Q ⊙ e^G)ᵀ dO per chunk,
//   5. dcarry:       reverse exclusive scan dS ← diag(e^Γ) dS + local, giving ∂ℓ/∂S after every
//                    chunk; the total is dh0,
//   6. bwd_chunk:    dq, dk, dv, dg of each chunk from its S, dS (docs/ops.md, gla).
#pragma once

#include "block.cuh"

namespace lak {
namespace gla {

using blk::kThreads;

// bf16 at D = 64: the in-chunk decayed products (A, and the in-chunk parts of dq, dk) in 16-row
// blocks on tensor cores (causal_scores_tc, grad_qk_tc). Off until it has passed the GPU tests
// (written after the last GPU run of its session; it compiled with the switch on): false = the
// fp32 FMA + exp loops, which also serve fp32, D = 128 and chunk sizes other than 64 (the
// tensor-core path was written for C = 64 only).
constexpr bool kTcScores = false;
template <typename T, int D, int C>
struct TcScores {
  static constexpr bool kOn = kTcScores && blk::Tc<T, D>::kOn && C == 64;
};

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
  static constexpr size_t kStateBytes = sizeof(float) * (3 * C * kLd);
  static constexpr size_t kOutBytes = sizeof(float) * (4 * C * kLd + C * kLdA + D * D);
  static constexpr size_t kDLocalBytes = sizeof(float) * (3 * C * kLd);
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

// sA = the causal scores A on tensor cores (bf16 storage, D = 64), in 16-row blocks: for a
// column block J below the row block I the decay factors through the block's first row
// r = 16I, e^{G_i − G_j} = e^{G_i − G_r} · e^{G_r − G_j} (both exponents <= 0), so the block
// is one mma product of Q ⊙ e^{G − G_r} and K ⊙ e^{G_r − G}; diagonal blocks are summed
// exactly in fp32, blocks above the diagonal are 0. Ends with the writes to sA (no barrier).
template <int D, int C>
__device__ __forceinline__ void causal_scores_tc(float* sA, int lda, const float* sQ,
                                                 const float* sK, const float* sG) {
  constexpr int ld = D + 1;
  using Acc = blk::TcAcc<C, C>;
  static_assert(Acc::kMT == 1, "one 16-row block per warp");
  Acc acc;
  acc.zero();
  const int r = acc.row0();  // this warp's row block I = r / 16
  if (acc.col0() < r) {
    acc.template mm<D>(
        [&](int i, int l) {
          return sQ[i * ld + l] * __expf(fminf(sG[i * ld + l] - sG[r * ld + l], 0.f));
        },
        [&](int l, int j) {
          return sK[j * ld + l] * __expf(fminf(sG[r * ld + l] - sG[j * ld + l], 0.f));
        });
  }
  acc.each([&](int i, int j, float& v) {
    if (j < r || j >= r + 16) sA[i * lda + j] = j < r ? v : 0.f;
  });
  // The diagonal block (rows and columns r .. r+15), if this warp's columns hold it: each lane
  // sums rows i0 = r + g, i1 = i0 + 8 against columns j0, j0 + 1 of each 8-column half.
  if (acc.col0() <= r && r < acc.col0() + Acc::kNT * 8) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t2 = (lane & 3) * 2;
    const int i0 = r + g, i1 = i0 + 8;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int j0 = r + 8 * half + t2, j1 = j0 + 1;
      float s00 = 0.f, s01 = 0.f, s10 = 0.f, s11 = 0.f;
      for (int l = 0; l < D; ++l) {
        const float q0 = sQ[i0 * ld + l], q1 = sQ[i1 * ld + l];
        const float g0 = sG[i0 * ld + l], g1 = sG[i1 * ld + l];
        const float k0 = sK[j0 * ld + l], k1 = sK[j1 * ld + l];
        const float h0 = sG[j0 * ld + l], h1 = sG[j1 * ld + l];
        if (half == 0) {
          s00 = fmaf(q0 * k0, __expf(fminf(g0 - h0, 0.f)), s00);
          s01 = fmaf(q0 * k1, __expf(fminf(g0 - h1, 0.f)), s01);
        }
        s10 = fmaf(q1 * k0, __expf(fminf(g1 - h0, 0.f)), s10);
        s11 = fmaf(q1 * k1, __expf(fminf(g1 - h1, 0.f)), s11);
      }
      sA[i0 * lda + j0] = j0 <= i0 ? s00 : 0.f;
      sA[i0 * lda + j1] = j1 <= i0 ? s01 : 0.f;
      sA[i1 * lda + j0] = j0 <= i1 ? s10 : 0.f;
      sA[i1 * lda + j1] = j1 <= i1 ? s11 : 0.f;
    }
  }
}

__device__ __forceinline__ int64_t row_index(const Args& a, int64_t b, int64_t h, int64_t t,
                                             int D) {
  return ((b * a.T + t) * a.H + h) * D;
}

// 1. Local state and total log decay of each segment.
template <typename T, int D, int C>
__global__ void __launch_bounds__(kThreads) seg_state_kernel(Args a) {
  constexpr int ld = Smem<D, C>::kLd;
  extern __shared__ float sm[];
  float* sK = sm;
  float* sG = sK + C * ld;
  float* sV = sG + C * ld;
  const int64_t seg = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  typename blk::Tc<T, D>::template Acc<D, D> acc;
  acc.zero();
  float gtot = 0.f;  // thread l < D: the segment's total log decay of key dim l
  const int64_t c0 = seg * a.cps;
  const int64_t c1 = min(c0 + a.cps, a.n_chunks);
  // Next chunk's rows are fetched into registers while this one is computed (bf16, D = 64).
  constexpr bool kPf = blk::Tc<T, D>::kOn;
  blk::RowLoader<T, D, C> lk, lg, lv;
  if (kPf) {
    lk.fetch(a.k, b, h, c0 * C, a.T, a.H);
    lg.fetch(a.g, b, h, c0 * C, a.T, a.H);
    lv.fetch(a.v, b, h, c0 * C, a.T, a.H);
  }
  for (int64_t ch = c0; ch < c1; ++ch) {
    const int64_t t0 = ch * C;
    if (kPf) {
      lk.commit(sK, ld, blk::Ident());
      lg.commit(sG, ld, blk::Ident());
      lv.commit(sV, ld, blk::Ident());
    } else {
      float* const s[3] = {sK, sG, sV};
      const void* const g[3] = {a.k, a.g, a.v};
      const bool m[3] = {false, false, false};
      blk::load_rows_n<T, D, C>(s, ld, g, m, b, h, t0, a.T, a.H, blk::Ident());
    }
    __syncthreads();
    if (kPf && ch + 1 < c1) {
      lk.fetch(a.k, b, h, t0 + C, a.T, a.H);
      lg.fetch(a.g, b, h, t0 + C, a.T, a.H);
      lv.fetch(a.v, b, h, t0 + C, a.T, a.H);
    }
    blk::cumsum_rows<D, C>(sG, ld);
    __syncthreads();
    for (int idx = threadIdx.x; idx < C * D; idx += kThreads) {
      const int row = idx / D, col = idx % D;
      sK[row * ld + col] *= __expf(sG[(C - 1) * ld + col] - sG[row * ld + col]);
    }
    if (threadIdx.x < D) gtot += sG[(C - 1) * ld + threadIdx.x];
    __syncthreads();
    acc.each([&](int l, int, float& v) { v *= __expf(sG[(C - 1) * ld + l]); });
    acc.template mm<C>([&](int l, int t) { return sK[t * ld + l]; },
                       [&](int t, int j) { return sV[t * ld + j]; });
    __syncthreads();
  }
  float* out = a.st + (bh * a.nseg + seg) * (int64_t)(D * D);
  acc.each([&](int l, int j, float& v) { out[l * D + j] = v; });
  if (threadIdx.x < D) a.gsum[(bh * a.nseg + seg) * D + threadIdx.x] = gtot;
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
  constexpr int RC = C / 16;
  constexpr int ld = Smem<D, C>::kLd;
  constexpr int lda = Smem<D, C>::kLdA;
  extern __shared__ float sm[];
  float* sQ = sm;
  float* sK = sQ + C * ld;
  float* sG = sK + C * ld;
  float* sV = sG + C * ld;
  float* sA = sV + C * ld;   // C x lda
  float* sS = sA + C * lda;  // D x D
  const int64_t seg = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int x = blk::tx(), y = blk::ty();
  const float* carry = a.st + (bh * a.nseg + seg) * (int64_t)(D * D);
  blk::copy_rows_f32(sS, D, carry, D * D, D);

  const int64_t c0 = seg * a.cps;
  const int64_t c1 = min(c0 + a.cps, a.n_chunks);
  // Next chunk's rows are fetched into registers while this one is computed (bf16, D = 64).
  constexpr bool kPf = blk::Tc<T, D>::kOn;
  blk::RowLoader<T, D, C> lq, lk, lg, lv;
  if (kPf) {
    lq.fetch(a.q, b, h, c0 * C, a.T, a.H);
    lk.fetch(a.k, b, h, c0 * C, a.T, a.H);
    lg.fetch(a.g, b, h, c0 * C, a.T, a.H);
    lv.fetch(a.v, b, h, c0 * C, a.T, a.H);
  }
  for (int64_t ch = c0; ch < c1; ++ch) {
    const int64_t t0 = ch * C;
    if (kPf) {
      lq.commit(sQ, ld, blk::Ident());
      lk.commit(sK, ld, blk::Ident());
      lg.commit(sG, ld, blk::Ident());
      lv.commit(sV, ld, blk::Ident());
    } else {
      float* const s[4] = {sQ, sK, sG, sV};
      const void* const g[4] = {a.q, a.k, a.g, a.v};
      const bool m[4] = {false, false, false, false};
      blk::load_rows_n<T, D, C>(s, ld, g, m, b, h, t0, a.T, a.H, blk::Ident());
    }
    __syncthreads();
    if (kPf && ch + 1 < c1) {
      lq.fetch(a.q, b, h, t0 + C, a.T, a.H);
      lk.fetch(a.k, b, h, t0 + C, a.T, a.H);
      lg.fetch(a.g, b, h, t0 + C, a.T, a.H);
      lv.fetch(a.v, b, h, t0 + C, a.T, a.H);
    }
    blk::cumsum_rows<D, C>(sG, ld);
    __syncthreads();
    if constexpr (TcScores<T, D, C>::kOn) {
      causal_scores_tc<D, C>(sA, lda, sQ, sK, sG);
    } else {
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
    {
      typename blk::Tc<T, D>::template Acc<C, D> acc_o;
      acc_o.zero();
      acc_o.template mm<D>([&](int i, int l) { return sQ[i * ld + l]; },
                           [&](int l, int j) { return sS[l * D + j]; });
      acc_o.template mm<C>([&](int i, int j) { return sA[i * lda + j]; },
                           [&](int j, int t) { return sV[j * ld + t]; });
      acc_o.each([&](int i, int j, float& v) {
        const int64_t t = t0 + i;
        if (t < a.T) blk::Io<T>::store(a.o, row_index(a, b, h, t, D) + j, v * a.scale);
      });
    }
    if (ch + 1 < c1) {
      typename blk::Tc<T, D>::template Acc<D, D> acc_s;
      acc_s.zero();
      acc_s.template mm<C>([&](int l, int t) { return sK[t * ld + l]; },
                           [&](int t, int j) { return sV[t * ld + j]; });
      __syncthreads();  // everyone is done reading sS
      acc_s.each([&](int l, int j, float& v) {
        float* s = &sS[l * D + j];
        *s = fmaf(__expf(sG[(C - 1) * ld + l]), *s, v);
      });
    }
    __syncthreads();
  }
}

// 4. scale · (Q ⊙ e^G)ᵀ dO of every chunk.
template <typename T, int D, int C>
__global__ void __launch_bounds__(kThreads) dstate_local_kernel(Args a) {
  constexpr int ld = Smem<D, C>::kLd;
  extern __shared__ float sm[];
  float* sQ = sm;
  float* sG = sQ + C * ld;
  float* sO = sG + C * ld;
  const int64_t ch = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t t0 = ch * C;
  {
    float* const s[3] = {sQ, sG, sO};
    const void* const g[3] = {a.q, a.g, a.dout};
    const bool m[3] = {false, false, false};
    blk::load_rows_n<T, D, C>(s, ld, g, m, b, h, t0, a.T, a.H, blk::Ident());
  }
  __syncthreads();
  blk::cumsum_rows<D, C>(sG, ld);
  __syncthreads();
  for (int idx = threadIdx.x; idx < C * D; idx += kThreads) {
    const int row = idx / D, col = idx % D;
    sQ[row * ld + col] *= __expf(sG[row * ld + col]);
  }
  __syncthreads();
  typename blk::Tc<T, D>::template Acc<D, D> acc;
  acc.zero();
  acc.template mm<C>([&](int l, int t) { return sQ[t * ld + l]; },
                     [&](int t, int j) { return sO[t * ld + j]; });
  float* out = a.dst + (bh * a.n_chunks + ch) * (int64_t)(D * D);
  acc.each([&](int l, int j, float& v) { out[l * D + j] = v * a.scale; });
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

// dq and dk of one chunk on tensor cores (bf16 storage, D = 64), in 16-row blocks r .. r+15
// (one per warp): the parts through S and dS, the off-diagonal blocks factored through the
// block's first row r (dq) or last row s = r + 15 (dk), e^{G_i − G_j} = e^{G_i − G_r} e^{G_r −
// G_j} with both exponents <= 0, and the diagonal block summed exactly. Writes dq and dk, then
// (after a barrier) dG = Q ⊙ dQ − K ⊙ dK into sQ.
template <typename T, int D, int C>
__device__ __forceinline__ void grad_qk_tc(const Args& a, int64_t b, int64_t h, int64_t t0,
                                           float* sQ, const float* sK, const float* sG,
                                           const float* sV, const float* sO, const float* sDA,
                                           const float* S, const float* dS) {
  constexpr int ld = D + 1, lda = C + 1, lds = Smem<D, C>::kLdS;
  using Acc = blk::TcAcc<C, D>;
  static_assert(Acc::kMT == 1, "one 16-row block per warp");
  Acc dq, dk, off;
  const int r = dq.row0();
  const int s = r + 15;
  dq.zero();
  dq.template mm<D>([&](int i, int t) { return sO[i * ld + t]; },
                    [&](int t, int l) { return S[l * lds + t]; });
  dq.each([&](int i, int l, float& v) { v *= a.scale * __expf(sG[i * ld + l]); });
  if (r > 0) {
    off.zero();
    off.template mm<C>([&](int i, int j) { return j < r ? sDA[i * lda + j] : 0.f; },
                       [&](int j, int l) {
                         return j < r ? sK[j * ld + l] *
                                            __expf(fminf(sG[r * ld + l] - sG[j * ld + l], 0.f))
                                      : 0.f;
                       });
    const float* ov = &off.v[0][0][0];
    int n = 0;
    dq.each([&](int i, int l, float& v) {
      v = fmaf(ov[n++], __expf(fminf(sG[i * ld + l] - sG[r * ld + l], 0.f)), v);
    });
  }
  dq.each([&](int i, int l, float& v) {
    const float gi = sG[i * ld + l];
    float acc = 0.f;
    for (int j = r; j <= i; ++j) {
      acc = fmaf(sDA[i * lda + j] * sK[j * ld + l], __expf(fminf(gi - sG[j * ld + l], 0.f)), acc);
    }
    v += acc;
  });

  dk.zero();
  dk.template mm<D>([&](int j, int t) { return sV[j * ld + t]; },
                    [&](int t, int l) { return dS[l * lds + t]; });
  dk.each([&](int j, int l, float& v) { v *= __expf(sG[(C - 1) * ld + l] - sG[j * ld + l]); });
  if (s < C - 1) {
    off.zero();
    off.template mm<C>([&](int j, int i) { return i > s ? sDA[i * lda + j] : 0.f; },
                       [&](int i, int l) {
                         return i > s ? sQ[i * ld + l] *
                                            __expf(fminf(sG[i * ld + l] - sG[s * ld + l], 0.f))
                                      : 0.f;
                       });
    const float* ov = &off.v[0][0][0];
    int n = 0;
    dk.each([&](int j, int l, float& v) {
      v = fmaf(ov[n++], __expf(fminf(sG[s * ld + l] - sG[j * ld + l], 0.f)), v);
    });
  }
  dk.each([&](int j, int l, float& v) {
    const float gj = sG[j * ld + l];
    float acc = 0.f;
    for (int i = j; i <= s; ++i) {
      acc = fmaf(sDA[i * lda + j] * sQ[i * ld + l], __expf(fminf(sG[i * ld + l] - gj, 0.f)), acc);
    }
    v += acc;
  });

  {
    const float* kv = &dk.v[0][0][0];
    int n = 0;
    dq.each([&](int i, int l, float& v) {
      const float kd = kv[n++];
      const int64_t t = t0 + i;
      if (t < a.T) {
        const int64_t idx = row_index(a, b, h, t, D) + l;
        if (a.dq != nullptr) blk::Io<T>::store(a.dq, idx, v);
        if (a.dk != nullptr) blk::Io<T>::store(a.dk, idx, kd);
      }
      v = sQ[i * ld + l] * v - sK[i * ld + l] * kd;
    });
  }
  __syncthreads();  // done with raw Q, K and dA
  dq.each([&](int i, int l, float& v) { sQ[i * ld + l] = v; });
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
    blk::copy_rows_f32(sS, lds, gS, E, D);
    blk::copy_rows_f32(sdS, lds, gdS, E, D);
    S = sS;
    dS = sdS;
  } else {
    S = gS;
    dS = gdS;
  }
  {
    float* const s[5] = {sQ, sK, sG, sV, sO};
    const void* const g[5] = {a.q, a.k, a.g, a.v, a.dout};
    const bool m[5] = {false, false, false, false, false};
    blk::load_rows_n<T, D, C>(s, ld, g, m, b, h, t0, a.T, a.H, blk::Ident());
  }
  __syncthreads();
  blk::cumsum_rows<D, C>(sG, ld);
  __syncthreads();

  // A and dA = scale · tril(dO Vᵀ).
  {
    if constexpr (TcScores<T, D, C>::kOn) {
      causal_scores_tc<D, C>(sA, lda, sQ, sK, sG);
    } else {
      float acc[RC][RC];
      causal_scores<D, C>(acc, sQ, sK, sG);
#pragma unroll
      for (int r = 0; r < RC; ++r)
#pragma unroll
        for (int c = 0; c < RC; ++c) sA[(y + 16 * r) * lda + x + 16 * c] = acc[r][c];
    }
    typename blk::Tc<T, D>::template Acc<C, C> da;
    da.zero();
    da.template mm<D>([&](int i, int t) { return sO[i * ld + t]; },
                      [&](int t, int j) { return sV[j * ld + t]; });
    da.each([&](int i, int j, float& v) { sDA[i * lda + j] = j <= i ? v * a.scale : 0.f; });
  }
  __syncthreads();

  if constexpr (TcScores<T, D, C>::kOn) {
    grad_qk_tc<T, D, C>(a, b, h, t0, sQ, sK, sG, sV, sO, sDA, S, dS);
  } else {
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
  }
  for (int idx = threadIdx.x; idx < C * D; idx += kThreads) {
    const int row = idx / D, col = idx % D;
    sK[row * ld + col] *= __expf(sG[(C - 1) * ld + col] - sG[row * ld + col]);
  }
  __syncthreads();

  // dV = scale · Aᵀ dO + K̃ dS (rows j = y + 16r, cols t = x + 16c).
  {
    typename blk::Tc<T, D>::template Acc<C, D> dv;
    dv.zero();
    dv.template mm<C>([&](int j, int i) { return sA[i * lda + j]; },
                      [&](int i, int t) { return sO[i * ld + t]; });
    dv.each([&](int, int, float& v) { v *= a.scale; });
    dv.template mm<D>([&](int j, int l) { return sK[j * ld + l]; },
                      [&](int l, int t) { return dS[l * lds + t]; });
    if (a.dv != nullptr) {
      dv.each([&](int j, int c, float& v) {
        const int64_t t = t0 + j;
        if (t < a.T) blk::Io<T>::store(a.dv, row_index(a, b, h, t, D) + c, v);
      });
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
