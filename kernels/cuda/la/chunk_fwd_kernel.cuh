// la forward kernels, templated on storage dtype T, head dim D (= K = V) and chunk size C.
//
// Per (b,h), with φ(x) = elu(x)+1: S_t = S_{t-1} + φ(k_t)v_tᵀ, z_t = z_{t-1} + φ(k_t);
// o_t = φ(q_t)ᵀS_t / (φ(q_t)ᵀz_t + 1e-6) (normalize) or scale·φ(q_t)ᵀS_t.
//
// The sequence is cut into chunks of C tokens and runs of `cps` chunks ("segments"), so the
// grid covers segments × B·H thread blocks instead of B·H:
//   1. seg_state: each block sums φ(K)ᵀV and Σφ(K) over its segment into the workspace.
//   2. carry:     per (b,h) and state element, an exclusive scan over segments seeded with
//                 h0/z0, in place; the running total becomes final_state / final_z.
//   3. output:    each block starts from its segment's carry and walks its chunks:
//                 O = φ(Q)S + tril(φ(Q)φ(K)ᵀ)V (and the normalizer), then S += φ(K)ᵀV.
// bf16 storage at D = 64 runs the chunk products on tensor cores (block.cuh, TcAcc: bf16
// operands, fp32 accumulation; the C x C scores at C = 16 are too small for its 8-warp split and
// run on FMA); otherwise fp32 FMA. S, z and all sums stay fp32. C is 16, 32 or 64 (one
// instantiation each, chunk_fwd.cu).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../gla/block.cuh"

namespace lak {
namespace la {

struct Args {
  const void* q;
  const void* k;
  const void* v;
  const float* h0;
  const float* z0;
  void* o;
  float* final_state;
  float* final_z;
  float* ws;  // [B*H][nseg][D*D + D] fp32
  // Backward only (else null): do, and per row (1/d or scale, ∂D) as float2 [B*H][n_chunks*C].
  const void* dout;
  float* rowstat;
  int64_t B, T, H;
  int64_t n_chunks;  // ceil(T / C)
  int64_t cps;       // chunks per segment
  int64_t nseg;      // ceil(n_chunks / cps)
  float scale;
  int normalize;
};

using blk::Io;
using blk::kThreads;

__device__ __forceinline__ float phi(float x) { return x > 0.f ? x + 1.f : expf(x); }

struct PhiF {
  __device__ __forceinline__ float operator()(float x) const { return phi(x); }
};

template <typename T, int D, int C>
struct Smem {
  static constexpr int kLd = D + blk::Tc<T, D>::kPad;   // padded row stride of C x D tiles and S
  static constexpr int kLdA = C + blk::Tc<T, D>::kPad;  // of the C x C scores
  static constexpr int kStateFloats = 2 * C * kLd;                              // seg_state
  static constexpr int kOutFloats = 3 * C * kLd + C * kLdA + D * kLd + D + 2 * C;  // output
  static constexpr size_t kStateBytes = sizeof(float) * kStateFloats;
  static constexpr size_t kOutBytes = sizeof(float) * kOutFloats;
};

// 1. Σ over the segment's tokens of φ(k)vᵀ and φ(k).
template <typename T, int D, int C>
__global__ void __launch_bounds__(kThreads) seg_state_kernel(Args a) {
  constexpr int ld = Smem<T, D, C>::kLd;
  extern __shared__ float sm[];
  float* sK = sm;           // C x ld
  float* sV = sK + C * ld;  // C x ld
  const int64_t seg = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  typename blk::Tc<T, D>::template Acc<D, D> acc;
  acc.zero();
  float zacc = 0.f;

  const int64_t c0 = seg * a.cps;
  const int64_t c1 = min(c0 + a.cps, a.n_chunks);
  // Next chunk's rows are fetched into registers while this one is computed (bf16, D = 64).
  constexpr bool kPf = blk::Tc<T, D>::kOn;
  blk::RowLoader<T, D, C> lk, lv;
  if (kPf) {
    lk.fetch(a.k, b, h, c0 * C, a.T, a.H);
    lv.fetch(a.v, b, h, c0 * C, a.T, a.H);
  }
  for (int64_t ch = c0; ch < c1; ++ch) {
    if (kPf) {
      lk.commit(sK, ld, PhiF());
      lv.commit(sV, ld, blk::Ident());
    } else {
      float* const s[2] = {sK, sV};
      const void* const g[2] = {a.k, a.v};
      const bool m[2] = {true, false};
      blk::load_rows_n<T, D, C>(s, ld, g, m, b, h, ch * C, a.T, a.H, PhiF());
    }
    __syncthreads();
    if (kPf && ch + 1 < c1) {
      lk.fetch(a.k, b, h, (ch + 1) * C, a.T, a.H);
      lv.fetch(a.v, b, h, (ch + 1) * C, a.T, a.H);
    }
    acc.template mm<C>([&](int l, int t) { return sK[t * ld + l]; },
                       [&](int t, int j) { return sV[t * ld + j]; });
    if (threadIdx.x < D) {
      for (int t = 0; t < C; ++t) zacc += sK[t * ld + threadIdx.x];
    }
    __syncthreads();
  }
  float* out = a.ws + (bh * a.nseg + seg) * (int64_t)(D * D + D);
  acc.each([&](int l, int j, float& v) { out[l * D + j] = v; });
  if (threadIdx.x < D) out[D * D + threadIdx.x] = zacc;
}

// 2. Exclusive scan over segments, seeded with h0/z0; the total is the final state.
template <int D>
__global__ void __launch_bounds__(kThreads) carry_kernel(Args a) {
  constexpr int E = D * D + D;
  const int64_t idx = (int64_t)blockIdx.x * kThreads + threadIdx.x;
  const int64_t bh = idx / E;
  const int e = (int)(idx % E);
  if (bh >= a.B * a.H) return;
  float carry = 0.f;
  if (e < D * D) {
    if (a.h0 != nullptr) carry = a.h0[bh * D * D + e];
  } else if (a.z0 != nullptr) {
    carry = a.z0[bh * D + (e - D * D)];
  }
  float* p = a.ws + bh * a.nseg * E + e;
  int64_t s = 0;
  for (; s + 4 <= a.nseg; s += 4) {
    const float x0 = p[(s + 0) * E], x1 = p[(s + 1) * E], x2 = p[(s + 2) * E],
                x3 = p[(s + 3) * E];
    p[(s + 0) * E] = carry;
    carry += x0;
    p[(s + 1) * E] = carry;
    carry += x1;
    p[(s + 2) * E] = carry;
    carry += x2;
    p[(s + 3) * E] = carry;
    carry += x3;
  }
  for (; s < a.nseg; ++s) {
    const float x = p[s * E];
    p[s * E] = carry;
    carry += x;
  }
  if (e < D * D) {
    a.final_state[bh * D * D + e] = carry;
  } else if (a.final_z != nullptr) {
    a.final_z[bh * D + (e - D * D)] = carry;
  }
}

// 3. Outputs of one segment, chunk by chunk, carrying S and z in shared memory.
template <typename T, int D, int C>
__global__ void __launch_bounds__(kThreads) output_kernel(Args a) {
  using Sm = Smem<T, D, C>;
  constexpr int ld = Sm::kLd;
  constexpr int lda = Sm::kLdA;
  extern __shared__ float sm[];
  float* sQ = sm;             // C x ld
  float* sK = sQ + C * ld;    // C x ld
  float* sV = sK + C * ld;    // C x ld
  float* sA = sV + C * ld;    // C x lda
  float* sS = sA + C * lda;   // D x ld
  float* sz = sS + D * ld;    // D
  float* sDen = sz + D;       // C
  float* sDot = sDen + C;     // C
  const int64_t seg = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;

  const float* carry = a.ws + (bh * a.nseg + seg) * (int64_t)(D * D + D);
  blk::copy_rows_f32(sS, ld, carry, D * D, D);
  for (int i = threadIdx.x; i < D; i += kThreads) sz[i] = carry[D * D + i];

  const int64_t c0 = seg * a.cps;
  const int64_t c1 = min(c0 + a.cps, a.n_chunks);
  // Next chunk's rows are fetched into registers while this one is computed (bf16, D = 64).
  constexpr bool kPf = blk::Tc<T, D>::kOn;
  blk::RowLoader<T, D, C> lq, lk, lv;
  if (kPf) {
    lq.fetch(a.q, b, h, c0 * C, a.T, a.H);
    lk.fetch(a.k, b, h, c0 * C, a.T, a.H);
    lv.fetch(a.v, b, h, c0 * C, a.T, a.H);
  }
  for (int64_t ch = c0; ch < c1; ++ch) {
    const int64_t t0 = ch * C;
    if (kPf) {
      lq.commit(sQ, ld, PhiF());
      lk.commit(sK, ld, PhiF());
      lv.commit(sV, ld, blk::Ident());
    } else {
      float* const s[3] = {sQ, sK, sV};
      const void* const g[3] = {a.q, a.k, a.v};
      const bool m[3] = {true, true, false};
      blk::load_rows_n<T, D, C>(s, ld, g, m, b, h, t0, a.T, a.H, PhiF());
    }
    if (threadIdx.x < C) sDot[threadIdx.x] = 0.f;
    __syncthreads();
    if (kPf && ch + 1 < c1) {
      lq.fetch(a.q, b, h, t0 + C, a.T, a.H);
      lk.fetch(a.k, b, h, t0 + C, a.T, a.H);
      lv.fetch(a.v, b, h, t0 + C, a.T, a.H);
    }

    // A = tril(φQ φKᵀ), causal mask inclusive (o_t sees token t).
    {
      typename blk::Tc<T, D>::template Acc<C, C> acc_a;
      acc_a.zero();
      acc_a.template mm<D>([&](int i, int d) { return sQ[i * ld + d]; },
                           [&](int d, int j) { return sK[j * ld + d]; });
      acc_a.each([&](int i, int j, float& v) { sA[i * lda + j] = j <= i ? v : 0.f; });
    }
    __syncthreads();
    // Denominators φ(q_i)·z + Σ_j A_ij, four threads per row.
    if (a.normalize) {
      static_assert(4 * C <= kThreads, "four threads per row");
      const int i = threadIdx.x / 4, part = threadIdx.x % 4;
      float sum = 0.f;
      if (i < C) {
        for (int j = part; j < C; j += 4) sum += sA[i * lda + j];
        for (int m = part; m < D; m += 4) sum = fmaf(sQ[i * ld + m], sz[m], sum);
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      if (i < C && part == 0) sDen[i] = sum;
    }
    // N = φQ S + A V
    typename blk::Tc<T, D>::template Acc<C, D> acc_o;
    acc_o.zero();
    acc_o.template mm<D>([&](int i, int d) { return sQ[i * ld + d]; },
                         [&](int d, int j) { return sS[d * ld + j]; });
    acc_o.template mm<C>([&](int i, int j) { return sA[i * lda + j]; },
                         [&](int j, int t) { return sV[j * ld + t]; });
    if (a.rowstat != nullptr) {
      acc_o.each([&](int i, int j, float& v) {
        const int64_t t = t0 + i;
        if (t < a.T) {
          atomicAdd(&sDot[i], Io<T>::load(a.dout, ((b * a.T + t) * a.H + h) * D + j) * v);
        }
      });
    }
    __syncthreads();  // sDen, sDot complete; everyone is done reading sS
    if (a.rowstat != nullptr && threadIdx.x < C) {
      // Backward: ∂N = mul · do and ∂D = −(do · n) mul² per row, n the unscaled numerator.
      const int i = threadIdx.x;
      const int64_t t = t0 + i;
      const float mul = a.normalize ? 1.f / (sDen[i] + 1e-6f) : a.scale;
      float* rs = a.rowstat + 2 * (bh * a.n_chunks * C + ch * C + i);
      rs[0] = t < a.T ? mul : 0.f;
      rs[1] = (t < a.T && a.normalize) ? -sDot[i] * mul * mul : 0.f;
    }
    acc_o.each([&](int i, int j, float& v) {
      const int64_t t = t0 + i;
      if (t >= a.T) return;
      const float mul = a.normalize ? 1.f / (sDen[i] + 1e-6f) : a.scale;
      Io<T>::store(a.o, ((b * a.T + t) * a.H + h) * D + j, v * mul);
    });

    // S += φKᵀ V, z += Σ φK, unless this was the segment's last chunk.
    if (ch + 1 < c1) {
      typename blk::Tc<T, D>::template Acc<D, D> acc_s;
      acc_s.zero();
      acc_s.template mm<C>([&](int l, int t) { return sK[t * ld + l]; },
                           [&](int t, int j) { return sV[t * ld + j]; });
      acc_s.each([&](int l, int j, float& v) { sS[l * ld + j] += v; });
      if (threadIdx.x < D) {
        float zs = 0.f;
        for (int t = 0; t < C; ++t) zs += sK[t * ld + threadIdx.x];
        sz[threadIdx.x] += zs;
      }
    }
    __syncthreads();
  }
}

}  // namespace la
}  // namespace lak
