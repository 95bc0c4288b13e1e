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

template <typename T, int D, int C>
struct BwdSmem {
  static constexpr int kLd = D + blk::Tc<T, D>::kPad;
  static constexpr int kLdA = C + blk::Tc<T, D>::kPad;
  static constexpr bool kStateInSmem = D <= 64;
  static constexpr int kLdS = kStateInSmem ? kLd : D;
  static constexpr size_t kLocalBytes = sizeof(float) * (2 * C * kLd + C);
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
  constexpr int ld = BwdSmem<T, D, C>::kLd;
  constexpr int E = D * D + D;
  extern __shared__ float sm[];
  float* sQ = sm;            // Φq, C x ld
  float* sN = sQ + C * ld;   // ∂N, C x ld
  float* sDd = sN + C * ld;  // ∂D, C
  const int64_t ch = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t t0 = ch * C;
  const float* rs = a.rowstat + 2 * (bh * a.n_chunks * C + ch * C);
  {
    float* const s[2] = {sQ, sN};
    const void* const g[2] = {a.q, a.dout};
    const bool m[2] = {true, false};
    blk::load_rows_n<T, D, C>(s, ld, g, m, b, h, t0, a.T, a.H, Phi());
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < C * D; idx += blk::kThreads) {
    sN[(idx / D) * ld + idx % D] *= rs[2 * (idx / D)];
  }
  for (int i = threadIdx.x; i < C; i += blk::kThreads) sDd[i] = rs[2 * i + 1];
  __syncthreads();
  typename blk::Tc<T, D>::template Acc<D, D> acc;
  acc.zero();
  acc.template mm<C>([&](int l, int t) { return sQ[t * ld + l]; },
                     [&](int t, int j) { return sN[t * ld + j]; });
  float* out = a.dst + (bh * a.n_chunks + ch) * (int64_t)E;
  acc.each([&](int l, int j, float& v) { out[l * D + j] = v; });
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
  using Sm = BwdSmem<T, D, C>;
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
  const int64_t t0 = ch * C;
  const float* gS = a.st + (bh * n + ch) * (int64_t)E;
  const float* gdS = a.dst + (bh * n + ch) * (int64_t)E;
  const float* rs = a.rowstat + 2 * (bh * n * C + ch * C);
  const float* S;
  const float* dS;
  if constexpr (Sm::kStateInSmem) {
    float* sS = sDd + C;
    float* sdS = sS + D * lds;
    blk::copy_rows_f32(sS, lds, gS, D * D, D);
    blk::copy_rows_f32(sdS, lds, gdS, D * D, D);
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
  {
    float* const s[4] = {sQ, sK, sV, sN};
    const void* const g[4] = {a.q, a.k, a.v, a.dout};
    const bool m[4] = {true, true, false, false};
    blk::load_rows_n<T, D, C>(s, ld, g, m, b, h, t0, a.T, a.H, Phi());
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < C * D; idx += blk::kThreads) {
    const int row = idx / D;
    sN[row * ld + idx % D] *= rs[2 * row];
  }
  __syncthreads();

  {
    typename blk::Tc<T, D>::template Acc<C, C> acc;
    acc.zero();
    acc.template mm<D>([&](int i, int l) { return sQ[i * ld + l]; },
                       [&](int l, int j) { return sK[j * ld + l]; });
    acc.each([&](int i, int j, float& v) { sP[i * lda + j] = j <= i ? v : 0.f; });
    acc.zero();
    acc.template mm<D>([&](int i, int t) { return sN[i * ld + t]; },
                       [&](int t, int j) { return sV[j * ld + t]; });
    acc.each([&](int i, int j, float& v) { sdP[i * lda + j] = j <= i ? v + sDd[i] : 0.f; });
  }
  __syncthreads();

  // dq (rows i, cols l).
  if (a.dq != nullptr) {
    typename blk::Tc<T, D>::template Acc<C, D> acc;
    acc.zero();
    acc.template mm<D>([&](int i, int t) { return sN[i * ld + t]; },
                       [&](int t, int l) { return S[l * lds + t]; });
    acc.template mm<C>([&](int i, int j) { return sdP[i * lda + j]; },
                       [&](int j, int l) { return sK[j * ld + l]; });
    acc.each([&](int i, int l, float& v) {
      const int64_t t = t0 + i;
      if (t >= a.T) return;
      const float d = fmaf(sDd[i], sz[l], v);
      blk::Io<T>::store(a.dq, ((b * a.T + t) * a.H + h) * D + l, d * dphi_from_phi(sQ[i * ld + l]));
    });
  }
  // dk (rows j, cols l).
  if (a.dk != nullptr) {
    typename blk::Tc<T, D>::template Acc<C, D> acc;
    acc.zero();
    acc.template mm<C>([&](int j, int i) { return sdP[i * lda + j]; },
                       [&](int i, int l) { return sQ[i * ld + l]; });
    acc.template mm<D>([&](int j, int t) { return sV[j * ld + t]; },
                       [&](int t, int l) { return dS[l * lds + t]; });
    acc.each([&](int j, int l, float& v) {
      const int64_t t = t0 + j;
      if (t >= a.T) return;
      blk::Io<T>::store(a.dk, ((b * a.T + t) * a.H + h) * D + l,
                        (v + sdz[l]) * dphi_from_phi(sK[j * ld + l]));
    });
  }
  // dv (rows j, cols t).
  if (a.dv != nullptr) {
    typename blk::Tc<T, D>::template Acc<C, D> acc;
    acc.zero();
    acc.template mm<C>([&](int j, int i) { return sP[i * lda + j]; },
                       [&](int i, int t) { return sN[i * ld + t]; });
    acc.template mm<D>([&](int j, int l) { return sK[j * ld + l]; },
                       [&](int l, int t) { return dS[l * lds + t]; });
    acc.each([&](int j, int c, float& v) {
      const int64_t t = t0 + j;
      if (t < a.T) blk::Io<T>::store(a.dv, ((b * a.T + t) * a.H + h) * D + c, v);
    });
  }
}

}  // namespace la
}  // namespace lak
