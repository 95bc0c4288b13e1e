// la backward kernels, chunked (docs/ops.md, la). The forward pass on the backward plan (one
// chunk per segment) has left every chunk's starting S, z in the workspace and per row
// mul = 1/d (or scale) and ∂D = −(do · n)/d² (0 without normalize), so ∂N = mul · do.
//   4. dstate_local: Φqᵀ ∂N and Φqᵀ ∂D of every chunk,
//   5. dcarry:       reverse exclusive sums over chunks: ∂ℓ/∂S, ∂ℓ/∂z after every chunk;
//                    the totals are dh0, dz0,
//   6. bwd_chunk:    with P = tril(Φq Φkᵀ), dP = tril(∂N Vᵀ + ∂D 1ᵀ):
//                    dΦq = ∂N Sᵀ + ∂D zᵀ + dP Φk, dΦk = dPᵀ Φq + V dSᵀ + 1 dzᵀ,
//                    dV = Pᵀ ∂N + Φk dS; dq = dΦq ⊙ φ′(q), dk = dΦk ⊙ φ′(k).
#pragma once

#include "../gla/block.cuh"

namespace lak {
namespace la {

struct BwdArgs {
  const void* q;
  const void* k;
  const void* v;
  const void* dout;
  void* dq;
  void* dk;
  void* dv;
  float* dh0;
  float* dz0;
  const float* st;       // [B*H][n][D*D + D]
  float* dst;            // [B*H][n][D*D + D]
  const float* rowstat;  // [B*H][n*C][2]
  int64_t B, T, H, n_chunks;
};

template <int D, int C>
struct BwdSmem {
  static constexpr int kLd = D + 1;
  static constexpr int kLdA = C + 1;
  static constexpr bool kStateInSmem = D <= 64;
  static constexpr int kLdS = kStateInSmem ? D + 1 : D;
  static constexpr size_t kLocalBytes = sizeof(float) * (C * kLd + C * D + C);
  static constexpr size_t kChunkBytes =
      sizeof(float) * (4 * C * kLd + 2 * C * kLdA + (kStateInSmem ? 2 * D * kLdS : 0) + 2 * D + C);
};

// φ′ from φ: φ(x) = x + 1 > 1 where x > 0 (φ′ = 1), else φ(x) = eˣ = φ′(x).
__device__ __forceinline__ float dphi_from_phi(float f) { return f > 1.f ? 1.f : f; }

struct Phi {
  __device__ __forceinline__ float operator()(float x) const { return x > 0.f ? x + 1.f : expf(x); }
};

template <typename T, int D, int C>
__global__ void __launch_bounds__(blk::kThreads) dstate_local_kernel(BwdArgs a) {
  constexpr int R = D / 16;
  constexpr int ld = BwdSmem<D, C>::kLd;
  constexpr int E = D * D + D;
  extern __shared__ float sm[];
  float* sQ = sm;            // Φq, C x ld
  float* sN = sQ + C * ld;   // ∂N, C x D
  float* sDd = sN + C * D;   // ∂D, C
  const int64_t ch = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int x = blk::tx(), y = blk::ty();
  const int64_t t0 = ch * C;
  const float* rs = a.rowstat + 2 * (bh * a.n_chunks * C + ch * C);
  blk::load_rows<T, D, C>(sQ, ld, a.q, b, h, t0, a.T, a.H, Phi());
  blk::load_rows<T, D, C>(sN, D, a.dout, b, h, t0, a.T, a.H, blk::Ident());
  __syncthreads();
  for (int idx = threadIdx.x; idx < C * D; idx += blk::kThreads) sN[idx] *= rs[2 * (idx / D)];
  for (int i = threadIdx.x; i < C; i += blk::kThreads) sDd[i] = rs[2 * i + 1];
  __syncthreads();
  float acc[R][R];
  blk::zero(acc);
  blk::mm<R, R, C>(
      acc, [&](int l, int t) { return sQ[t * ld + l]; },
      [&](int t, int j) { return sN[t * D + j]; });
  float* out = a.dst + (bh * a.n_chunks + ch) * (int64_t)E;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < R; ++c) out[(y + 16 * r) * D + x + 16 * c] = acc[r][c];
  for (int l = threadIdx.x; l < D; l += blk::kThreads) {
    float s = 0.f;
    for (int t = 0; t < C; ++t) s = fmaf(sQ[t * ld + l], sDd[t], s);
    out[D * D + l] = s;
  }
}

template <int D>
__global__ void __launch_bounds__(blk::kThreads) dcarry_kernel(BwdArgs a) {
  constexpr int E = D * D + D;
  const int64_t idx = (int64_t)blockIdx.x * blk::kThreads + threadIdx.x;
  const int64_t bh = idx / E;
  const int e = (int)(idx % E);
  if (bh >= a.B * a.H) return;
  const int64_t n = a.n_chunks;
  float* p = a.dst + bh * n * E + e;
  float carry = 0.f;
  int64_t c = n - 1;
  for (; c >= 3; c -= 4) {
    float x[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) x[u] = p[(c - u) * E];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      p[(c - u) * E] = carry;
      carry += x[u];
    }
  }
  for (; c >= 0; --c) {
    const float x = p[c * E];
    p[c * E] = carry;
    carry += x;
  }
  if (e < D * D) {
    if (a.dh0 != nullptr) a.dh0[bh * D * D + e] = carry;
  } else if (a.dz0 != nullptr) {
    a.dz0[bh * D + (e - D * D)] = carry;
  }
}

template <typename T, int D, int C>
__global__ void __launch_bounds__(blk::kThreads) bwd_chunk_kernel(BwdArgs a) {
  using Sm = BwdSmem<D, C>;
  constexpr int R = D / 16;
  constexpr int RC = C / 16;
  constexpr int ld = Sm::kLd;
  constexpr int lda = Sm::kLdA;
  constexpr int lds = Sm::kLdS;
  constexpr int E = D * D + D;
  extern __shared__ float sm[];
  float* sQ = sm;            // Φq
  float* sK = sQ + C * ld;   // Φk
  float* sV = sK + C * ld;   // V
  float* sN = sV + C * ld;   // ∂N
  float* sP = sN + C * ld;   // P, C x lda
  float* sdP = sP + C * lda;  // dP
  float* sz = sdP + C * lda;  // z, D
  float* sdz = sz + D;        // dz, D
  float* sDd = sdz + D;       // ∂D, C
  const int64_t ch = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t n = a.n_chunks;
  const int x = blk::tx(), y = blk::ty();
  const int64_t t0 = ch * C;
  const float* gS = a.st + (bh * n + ch) * (int64_t)E;
  const float* gdS = a.dst + (bh * n + ch) * (int64_t)E;
  const float* rs = a.rowstat + 2 * (bh * n * C + ch * C);
  const float* S;
  const float* dS;
  if constexpr (Sm::kStateInSmem) {
    float* sS = sDd + C;
    float* sdS = sS + D * lds;
    for (int i = threadIdx.x; i < D * D; i += blk::kThreads) {
      sS[(i / D) * lds + i % D] = gS[i];
      sdS[(i / D) * lds + i % D] = gdS[i];
    }
    S = sS;
    dS = sdS;
  } else {
    S = gS;
    dS = gdS;
  }
  for (int i = threadIdx.x; i < D; i += blk::kThreads) {
    sz[i] = gS[D * D + i];
    sdz[i] = gdS[D * D + i];
  }
  for (int i = threadIdx.x; i < C; i += blk::kThreads) sDd[i] = rs[2 * i + 1];
  blk::load_rows<T, D, C>(sQ, ld, a.q, b, h, t0, a.T, a.H, Phi());
  blk::load_rows<T, D, C>(sK, ld, a.k, b, h, t0, a.T, a.H, Phi());
  blk::load_rows<T, D, C>(sV, ld, a.v, b, h, t0, a.T, a.H, blk::Ident());
  blk::load_rows<T, D, C>(sN, ld, a.dout, b, h, t0, a.T, a.H, blk::Ident());
  __syncthreads();
  for (int idx = threadIdx.x; idx < C * D; idx += blk::kThreads) {
    const int row = idx / D;
    sN[row * ld + idx % D] *= rs[2 * row];
  }
  __syncthreads();

  {
    float acc[RC][RC];
    blk::zero(acc);
    blk::mm<RC, RC, D>(
        acc, [&](int i, int l) { return sQ[i * ld + l]; },
        [&](int l, int j) { return sK[j * ld + l]; });
#pragma unroll
    for (int r = 0; r < RC; ++r)
#pragma unroll
      for (int c = 0; c < RC; ++c) {
        const bool keep = x + 16 * c <= y + 16 * r;
        sP[(y + 16 * r) * lda + x + 16 * c] = keep ? acc[r][c] : 0.f;
      }
    blk::zero(acc);
    blk::mm<RC, RC, D>(
        acc, [&](int i, int t) { return sN[i * ld + t]; },
        [&](int t, int j) { return sV[j * ld + t]; });
#pragma unroll
    for (int r = 0; r < RC; ++r)
#pragma unroll
      for (int c = 0; c < RC; ++c) {
        const int i = y + 16 * r;
        const bool keep = x + 16 * c <= i;
        sdP[i * lda + x + 16 * c] = keep ? acc[r][c] + sDd[i] : 0.f;
      }
  }
  __syncthreads();

  // dq (rows i, cols l).
  {
    float acc[RC][R];
    blk::zero(acc);
    blk::mm<RC, R, D>(
        acc, [&](int i, int t) { return sN[i * ld + t]; },
        [&](int t, int l) { return S[l * lds + t]; });
    blk::mm<RC, R, C>(
        acc, [&](int i, int j) { return sdP[i * lda + j]; },
        [&](int j, int l) { return sK[j * ld + l]; });
    if (a.dq != nullptr) {
#pragma unroll
      for (int r = 0; r < RC; ++r) {
        const int i = y + 16 * r;
        const int64_t t = t0 + i;
        if (t >= a.T) continue;
        const int64_t base = ((b * a.T + t) * a.H + h) * D;
#pragma unroll
        for (int c = 0; c < R; ++c) {
          const int l = x + 16 * c;
          const float d = fmaf(sDd[i], sz[l], acc[r][c]);
          blk::Io<T>::store(a.dq, base + l, d * dphi_from_phi(sQ[i * ld + l]));
        }
      }
    }
  }
  // dk (rows j, cols l).
  {
    float acc[RC][R];
    blk::zero(acc);
    blk::mm<RC, R, C>(
        acc, [&](int j, int i) { return sdP[i * lda + j]; },
        [&](int i, int l) { return sQ[i * ld + l]; });
    blk::mm<RC, R, D>(
        acc, [&](int j, int t) { return sV[j * ld + t]; },
        [&](int t, int l) { return dS[l * lds + t]; });
    if (a.dk != nullptr) {
#pragma unroll
      for (int r = 0; r < RC; ++r) {
        const int j = y + 16 * r;
        const int64_t t = t0 + j;
        if (t >= a.T) continue;
        const int64_t base = ((b * a.T + t) * a.H + h) * D;
#pragma unroll
        for (int c = 0; c < R; ++c) {
          const int l = x + 16 * c;
          blk::Io<T>::store(a.dk, base + l, (acc[r][c] + sdz[l]) * dphi_from_phi(sK[j * ld + l]));
        }
      }
    }
  }
  // dv (rows j, cols t).
  if (a.dv != nullptr) {
    float acc[RC][R];
    blk::zero(acc);
    blk::mm<RC, R, C>(
        acc, [&](int j, int i) { return sP[i * lda + j]; },
        [&](int i, int t) { return sN[i * ld + t]; });
    blk::mm<RC, R, D>(
        acc, [&](int j, int l) { return sK[j * ld + l]; },
        [&](int l, int t) { return dS[l * lds + t]; });
#pragma unroll
    for (int r = 0; r < RC; ++r) {
      const int64_t t = t0 + y + 16 * r;
      if (t >= a.T) continue;
      const int64_t base = ((b * a.T + t) * a.H + h) * D;
#pragma unroll
      for (int c = 0; c < R; ++c) blk::Io<T>::store(a.dv, base + x + 16 * c, acc[r][c]);
    }
  }
}

}  // namespace la
}  // namespace lak
