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
// All math is fp32 FMA (no tensor cores yet); bf16 only changes storage of q,k,v,o.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

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

constexpr int kThreads = 256;  // a 16 x 16 grid of threads

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

// Loads rows [t0, t0+C) of a [B,T,H,D] tensor for (b,h) into smem (row stride `ld`), applying
// φ when PHI; rows at or past T are zero (not φ(0)), so padding tokens contribute nothing.
template <typename T, int D, int C, bool PHI>
__device__ __forceinline__ void load_rows(float* s, int ld, const void* g, int64_t b, int64_t h,
                                          int64_t t0, const Args& a) {
  for (int idx = threadIdx.x; idx < C * D; idx += kThreads) {
    const int row = idx / D, col = idx % D;
    const int64_t t = t0 + row;
    float x = 0.f;
    if (t < a.T) {
      x = Io<T>::load(g, ((b * a.T + t) * a.H + h) * D + col);
      if (PHI) x = phi(x);
    }
    s[row * ld + col] = x;
  }
}

template <int D, int C>
struct Smem {
  static constexpr int kLd = D + 1;  // padded row stride of Q/K tiles
  static constexpr int kStateFloats = C * kLd + C * D;                          // seg_state
  static constexpr int kOutFloats = 2 * C * kLd + C * D + D * D + D;            // output
  static constexpr size_t kStateBytes = sizeof(float) * kStateFloats;
  static constexpr size_t kOutBytes = sizeof(float) * kOutFloats;
};

// 1. Σ over the segment's tokens of φ(k)vᵀ and φ(k).
template <typename T, int D, int C>
__global__ void __launch_bounds__(kThreads) seg_state_kernel(Args a) {
  constexpr int R = D / 16;
  constexpr int ld = Smem<D, C>::kLd;
  extern __shared__ float sm[];
  float* sK = sm;           // C x ld
  float* sV = sK + C * ld;  // C x D
  const int64_t seg = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;

  float acc[R][R];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < R; ++c) acc[r][c] = 0.f;
  float zacc = 0.f;

  const int64_t c0 = seg * a.cps;
  const int64_t c1 = min(c0 + a.cps, a.n_chunks);
  for (int64_t ch = c0; ch < c1; ++ch) {
    const int64_t t0 = ch * C;
    load_rows<T, D, C, true>(sK, ld, a.k, b, h, t0, a);
    load_rows<T, D, C, false>(sV, D, a.v, b, h, t0, a);
    __syncthreads();
#pragma unroll 4
    for (int t = 0; t < C; ++t) {
      float kr[R], vr[R];
#pragma unroll
      for (int r = 0; r < R; ++r) kr[r] = sK[t * ld + ty + 16 * r];
#pragma unroll
      for (int c = 0; c < R; ++c) vr[c] = sV[t * D + tx + 16 * c];
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int c = 0; c < R; ++c) acc[r][c] = fmaf(kr[r], vr[c], acc[r][c]);
    }
    if (threadIdx.x < D) {
      for (int t = 0; t < C; ++t) zacc += sK[t * ld + threadIdx.x];
    }
    __syncthreads();
  }
  float* out = a.ws + (bh * a.nseg + seg) * (int64_t)(D * D + D);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < R; ++c) out[(ty + 16 * r) * D + tx + 16 * c] = acc[r][c];
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
  constexpr int R = D / 16;  // state rows / value columns per thread
  constexpr int RC = C / 16;  // chunk rows per thread
  constexpr int ld = Smem<D, C>::kLd;
  constexpr int lda = C + 1;  // A reuses sQ's space
  static_assert(C * lda <= C * ld, "A must fit in the Q tile");
  extern __shared__ float sm[];
  float* sQ = sm;            // C x ld, later A: C x lda
  float* sK = sQ + C * ld;   // C x ld
  float* sV = sK + C * ld;   // C x D
  float* sS = sV + C * D;    // D x D
  float* sz = sS + D * D;    // D
  const int64_t seg = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;

  const float* carry = a.ws + (bh * a.nseg + seg) * (int64_t)(D * D + D);
  for (int i = threadIdx.x; i < D * D + D; i += kThreads) sS[i] = carry[i];  // sz follows sS

  const int64_t c0 = seg * a.cps;
  const int64_t c1 = min(c0 + a.cps, a.n_chunks);
  for (int64_t ch = c0; ch < c1; ++ch) {
    const int64_t t0 = ch * C;
    load_rows<T, D, C, true>(sQ, ld, a.q, b, h, t0, a);
    load_rows<T, D, C, true>(sK, ld, a.k, b, h, t0, a);
    load_rows<T, D, C, false>(sV, D, a.v, b, h, t0, a);
    __syncthreads();

    // A = tril(φQ φKᵀ) for rows i = ty + 16r, cols j = tx + 16c; O = φQ S.
    float acc_a[RC][RC], acc_o[RC][R];
#pragma unroll
    for (int r = 0; r < RC; ++r) {
#pragma unroll
      for (int c = 0; c < RC; ++c) acc_a[r][c] = 0.f;
#pragma unroll
      for (int c = 0; c < R; ++c) acc_o[r][c] = 0.f;
    }
#pragma unroll 4
    for (int d = 0; d < D; ++d) {
      float qr[RC], kc[RC], sc[R];
#pragma unroll
      for (int r = 0; r < RC; ++r) qr[r] = sQ[(ty + 16 * r) * ld + d];
#pragma unroll
      for (int c = 0; c < RC; ++c) kc[c] = sK[(tx + 16 * c) * ld + d];
#pragma unroll
      for (int c = 0; c < R; ++c) sc[c] = sS[d * D + tx + 16 * c];
#pragma unroll
      for (int r = 0; r < RC; ++r) {
#pragma unroll
        for (int c = 0; c < RC; ++c) acc_a[r][c] = fmaf(qr[r], kc[c], acc_a[r][c]);
#pragma unroll
        for (int c = 0; c < R; ++c) acc_o[r][c] = fmaf(qr[r], sc[c], acc_o[r][c]);
      }
    }
    // Causal mask (inclusive: o_t sees token t) and, when normalizing, the denominator
    // φ(q_i)·z + Σ_{j<=i} A_ij, reduced over the 16 lanes that share row i.
    float den[RC];
#pragma unroll
    for (int r = 0; r < RC; ++r) {
      const int i = ty + 16 * r;
      float part = 0.f;
#pragma unroll
      for (int c = 0; c < RC; ++c) {
        if (tx + 16 * c > i) acc_a[r][c] = 0.f;
        part += acc_a[r][c];
      }
      if (a.normalize) {
#pragma unroll
        for (int m = 0; m < R; ++m) part = fmaf(sQ[i * ld + tx + 16 * m], sz[tx + 16 * m], part);
      }
#pragma unroll
      for (int off = 8; off > 0; off >>= 1) part += __shfl_xor_sync(0xffffffffu, part, off, 16);
      den[r] = part;
    }
    __syncthreads();  // everyone is done reading sQ
    float* sA = sQ;
#pragma unroll
    for (int r = 0; r < RC; ++r)
#pragma unroll
      for (int c = 0; c < RC; ++c) sA[(ty + 16 * r) * lda + tx + 16 * c] = acc_a[r][c];
    __syncthreads();

    // O += A V
#pragma unroll 4
    for (int j = 0; j < C; ++j) {
      float ar[RC], vc[R];
#pragma unroll
      for (int r = 0; r < RC; ++r) ar[r] = sA[(ty + 16 * r) * lda + j];
#pragma unroll
      for (int c = 0; c < R; ++c) vc[c] = sV[j * D + tx + 16 * c];
#pragma unroll
      for (int r = 0; r < RC; ++r)
#pragma unroll
        for (int c = 0; c < R; ++c) acc_o[r][c] = fmaf(ar[r], vc[c], acc_o[r][c]);
    }
    if (a.rowstat != nullptr) {
      // Backward: ∂N = mul · do and ∂D = −(do · n) mul² per row, n the unscaled numerator.
#pragma unroll
      for (int r = 0; r < RC; ++r) {
        const int64_t t = t0 + ty + 16 * r;
        const float mul = a.normalize ? 1.f / (den[r] + 1e-6f) : a.scale;
        float dot = 0.f;
        if (t < a.T) {
          const int64_t base = ((b * a.T + t) * a.H + h) * D;
#pragma unroll
          for (int c = 0; c < R; ++c)
            dot = fmaf(Io<T>::load(a.dout, base + tx + 16 * c), acc_o[r][c], dot);
        }
#pragma unroll
        for (int off = 8; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off, 16);
        if (tx == 0) {
          float* rs = a.rowstat + 2 * (bh * a.n_chunks * C + ch * C + ty + 16 * r);
          rs[0] = t < a.T ? mul : 0.f;
          rs[1] = (t < a.T && a.normalize) ? -dot * mul * mul : 0.f;
        }
      }
    }
#pragma unroll
    for (int r = 0; r < RC; ++r) {
      const int64_t t = t0 + ty + 16 * r;
      if (t >= a.T) continue;
      const float mul = a.normalize ? 1.f / (den[r] + 1e-6f) : a.scale;
      const int64_t base = ((b * a.T + t) * a.H + h) * D;
#pragma unroll
      for (int c = 0; c < R; ++c) Io<T>::store(a.o, base + tx + 16 * c, acc_o[r][c] * mul);
    }

    // S += φKᵀ V, z += Σ φK, unless this was the segment's last chunk.
    if (ch + 1 < c1) {
      float acc_s[R][R];
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int c = 0; c < R; ++c) acc_s[r][c] = 0.f;
#pragma unroll 4
      for (int t = 0; t < C; ++t) {
        float kr[R], vr[R];
#pragma unroll
        for (int r = 0; r < R; ++r) kr[r] = sK[t * ld + ty + 16 * r];
#pragma unroll
        for (int c = 0; c < R; ++c) vr[c] = sV[t * D + tx + 16 * c];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int c = 0; c < R; ++c) acc_s[r][c] = fmaf(kr[r], vr[c], acc_s[r][c]);
      }
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int c = 0; c < R; ++c) sS[(ty + 16 * r) * D + tx + 16 * c] += acc_s[r][c];
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
