// deltanet chunked (WY / UT transform) kernels, templated on the storage dtype T; chunk size C
// and head dim D (= K = V) are runtime values (C <= 64, D <= 128).
//
// Per (b,h) and chunk of C tokens (q, k l2-normalized when qk_l2norm):
//   A = tril(diag(β)KKᵀ, −1), N = (I + A)⁻¹, T = N diag(β), W = TK, U = TV,
//   V_new = U − W S, O = scale·[Q S + tril(QKᵀ) V_new], S ← S + Kᵀ V_new.
//
// Forward:
//   1. prep   (chunks × B·H blocks, parallel): W, U of every chunk into the workspace (fp32).
//   2. state  (B·H × D/kVT blocks, sequential over chunks): the columns of S are independent
//             (S ↦ S − KᵀW S + KᵀU acts on each column alone), so each block carries kVT columns
//             of the fp32 state, stores S_prev per chunk (Hs) and overwrites U with V_new.
//   3. output (chunks × B·H blocks, parallel): O from S_prev and V_new.
// Backward: prep and state again (recompute), then
//   4. dstate (B·H × D/kVT, reverse sequential): dS after each chunk (dHs); columns independent:
//             dV_new = scale·Pᵀ dO + K dS; dS ← dS + scale·Qᵀ dO − Wᵀ dV_new.
//   5. grad   (persistent blocks over chunks × B·H, parallel): every gradient of the chunk from
//             S_prev and dS (kernels/reference/deltanet/chunk.ts has the same algebra).
// All math is fp32 FMA; bf16 only changes the storage of q, k, v, beta, do, o and gradients.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lak {
namespace deltanet {

struct Args {
  const void* q;
  const void* k;
  const void* v;
  const void* beta;
  const void* do_;
  const float* h0;
  void* o;
  float* final_state;
  void* dq;
  void* dk;
  void* dv;
  void* dbeta;
  float* dh0;
  float* W;    // [B*H][NC][C][D]
  float* U;    // [B*H][NC][C][D]: U, then V_new
  float* Hs;   // [B*H][NC][D][D]: state before each chunk
  float* dHs;  // [B*H][NC][D][D]: dS after each chunk
  float* scratch;             // grad: per persistent block, scratch_per_block floats
  int64_t scratch_per_block;  // floats
  int smem_floats;            // grad: floats of dynamic shared memory
  int64_t B, T, H;
  int64_t NC;     // ceil(T / C)
  int64_t items;  // NC * B * H
  int D, C;
  float scale;
  int l2;
};

constexpr int kThreads = 256;
constexpr int kVT = 16;  // state columns per block of the sequential kernels

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

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Loads rows [t0, t0+C) of a [B,T,H,D] tensor for (b,h), columns [c0, c0+nc), into dst (row
// stride ld); rows at or past T are zero. With l2 (nc must be D), each row is divided by
// sqrt(Σx² + 1e-6) and the divisor goes to norm_out[row] (1 without l2) when norm_out is set.
template <typename T>
__device__ void load_rows(float* dst, int ld, const void* src, int64_t b, int64_t h, int64_t t0,
                          int c0, int nc, const Args& a, bool l2, float* norm_out) {
  // nc <= 128. Each warp keeps kRU rows (4 elements a lane each) in flight before reducing, so
  // the global loads overlap instead of paying one latency per row.
  constexpr int kW = kThreads / 32, kRU = 4;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int r0 = warp; r0 < a.C; r0 += kRU * kW) {
    float v[kRU][4];
#pragma unroll
    for (int u = 0; u < kRU; ++u) {
      const int r = r0 + u * kW;
      const int64_t t = t0 + r;
      const bool ok = r < a.C && t < a.T;
      const int64_t base = ((b * a.T + t) * a.H + h) * a.D + c0;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int c = lane + 32 * e;
        v[u][e] = (ok && c < nc) ? Io<T>::load(src, base + c) : 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < kRU; ++u) {
      const int r = r0 + u * kW;
      if (r >= a.C) break;  // warp-uniform
      float n = 1.f;
      if (l2) {
        float ss = 0.f;
#pragma unroll
        for (int e = 0; e < 4; ++e) ss = fmaf(v[u][e], v[u][e], ss);
        n = sqrtf(warp_sum(ss) + 1e-6f);
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int c = lane + 32 * e;
        if (c < nc) dst[r * ld + c] = l2 ? v[u][e] / n : v[u][e];
      }
      if (lane == 0 && norm_out != nullptr) norm_out[r] = n;
    }
  }
}

template <typename T>
__device__ void load_beta(float* dst, const Args& a, int64_t b, int64_t h, int64_t t0) {
  for (int r = threadIdx.x; r < a.C; r += kThreads) {
    const int64_t t = t0 + r;
    dst[r] = t < a.T ? Io<T>::load(a.beta, (b * a.T + t) * a.H + h) : 0.f;
  }
}

// Copies an m×n fp32 matrix (generic pointers, strides ls/ld).
// Eight loads a thread in flight before the stores.
__device__ __forceinline__ void copy_mat(float* dst, int ld, const float* src, int ls, int m,
                                         int n) {
  constexpr int kU = 8;
  const int total = m * n;
  for (int base = threadIdx.x; base < total; base += kU * kThreads) {
    float v[kU];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int idx = base + u * kThreads;
      v[u] = 0.f;
      if (idx < total) {
        const int i = idx / n, j = idx - i * n;
        v[u] = src[i * ls + j];
      }
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int idx = base + u * kThreads;
      if (idx < total) {
        const int i = idx / n, j = idx - i * n;
        dst[i * ld + j] = v[u];
      }
    }
  }
}

// Block-wide Cm[m×n] (=|+=) alpha·op(A)·op(B) with op(A) m×kk, op(B) kk×n; row-major with
// strides; TA: A is stored kk×m, TB: B is stored n×kk. Generic pointers (shared or global).
// Element (i, j) always belongs to the same thread for the same (m, n), so back-to-back calls
// accumulating into one output need no barrier between them.
template <bool TA, bool TB>
__device__ void bgemm(int m, int n, int kk, float alpha, const float* A, int lda, const float* B,
                      int ldb, float* Cm, int ldc, bool accumulate) {
  for (int idx = threadIdx.x; idx < m * n; idx += kThreads) {
    const int i = idx / n, j = idx - i * n;
    float s = 0.f;
    for (int l = 0; l < kk; ++l) {
      const float x = TA ? A[l * lda + i] : A[i * lda + l];
      const float y = TB ? B[j * ldb + l] : B[l * ldb + j];
      s = fmaf(x, y, s);
    }
    float* c = Cm + i * ldc + j;
    *c = accumulate ? fmaf(alpha, s, *c) : alpha * s;
  }
}

// N = (I + A)⁻¹ for strictly lower A (C×C, stride ld) by forward substitution; one thread per
// column (columns are independent), no barriers.
inline __device__ void unit_lower_inverse(const float* A, float* N, int ld, int C) {
  for (int j = threadIdx.x; j < C; j += kThreads) {
    for (int i = 0; i < C; ++i) {
      float x;
      if (i < j) {
        x = 0.f;
      } else if (i == j) {
        x = 1.f;
      } else {
        float s = 0.f;
        for (int l = j; l < i; ++l) s = fmaf(A[i * ld + l], N[l * ld + j], s);
        x = -s;
      }
      N[i * ld + j] = x;
    }
  }
}

// Keeps the lower triangle (diagonal included when diag) of a C×C matrix; zeroes the rest.
__device__ __forceinline__ void mask_tril(float* P, int ld, int C, bool diag) {
  for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
    const int i = idx / C, j = idx - i * C;
    if (diag ? j > i : j >= i) P[i * ld + j] = 0.f;
  }
}

// 1. W = TK, U = TV per chunk.
template <typename T>
__global__ void __launch_bounds__(kThreads) prep_kernel(Args a) {
  extern __shared__ float sm[];
  const int C = a.C, D = a.D, ldd = D + 1, ldc = C + 1;
  float* sK = sm;
  float* sV = sK + C * ldd;
  float* sA = sV + C * ldd;
  float* sN = sA + C * ldc;
  float* sb = sN + C * ldc;
  const int64_t ch = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H, t0 = ch * C;
  load_rows<T>(sK, ldd, a.k, b, h, t0, 0, D, a, a.l2 != 0, nullptr);
  load_rows<T>(sV, ldd, a.v, b, h, t0, 0, D, a, false, nullptr);
  load_beta<T>(sb, a, b, h, t0);
  __syncthreads();
  bgemm<false, true>(C, C, D, 1.f, sK, ldd, sK, ldd, sA, ldc, false);
  __syncthreads();
  for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
    const int i = idx / C, j = idx - i * C;
    sA[i * ldc + j] = j < i ? sb[i] * sA[i * ldc + j] : 0.f;
  }
  __syncthreads();
  unit_lower_inverse(sA, sN, ldc, C);
  __syncthreads();
  for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
    const int i = idx / C, j = idx - i * C;
    sN[i * ldc + j] *= sb[j];
  }
  __syncthreads();
  const int64_t off = (bh * a.NC + ch) * static_cast<int64_t>(C) * D;
  bgemm<false, false>(C, D, C, 1.f, sN, ldc, sK, ldd, a.W + off, D, false);
  bgemm<false, false>(C, D, C, 1.f, sN, ldc, sV, ldd, a.U + off, D, false);
}

// 2. The state recurrence over chunks for kVT columns of S; stores S_prev per chunk, V_new.
template <typename T>
__global__ void __launch_bounds__(kThreads) state_kernel(Args a) {
  extern __shared__ float sm[];
  const int C = a.C, D = a.D, ldd = D + 1;
  float* sS = sm;               // D × kVT
  float* sK = sS + D * kVT;     // C × ldd
  float* sW = sK + C * ldd;     // C × ldd
  float* sVn = sW + C * ldd;    // C × kVT
  const int64_t bh = blockIdx.x;
  const int v0 = blockIdx.y * kVT;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t DD = static_cast<int64_t>(D) * D;
  for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) {
    const int i = idx / kVT, j = idx % kVT;
    sS[idx] = a.h0 != nullptr ? a.h0[bh * DD + static_cast<int64_t>(i) * D + v0 + j] : 0.f;
  }
  for (int64_t ch = 0; ch < a.NC; ++ch) {
    __syncthreads();
    float* hs = a.Hs + (bh * a.NC + ch) * DD + v0;
    for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) {
      const int i = idx / kVT, j = idx % kVT;
      hs[static_cast<int64_t>(i) * D + j] = sS[idx];
    }
    const int64_t off = (bh * a.NC + ch) * static_cast<int64_t>(C) * D;
    load_rows<T>(sK, ldd, a.k, b, h, ch * C, 0, D, a, a.l2 != 0, nullptr);
    copy_mat(sW, ldd, a.W + off, D, C, D);
    copy_mat(sVn, kVT, a.U + off + v0, D, C, kVT);
    __syncthreads();
    bgemm<false, false>(C, kVT, D, -1.f, sW, ldd, sS, kVT, sVn, kVT, true);
    __syncthreads();
    copy_mat(a.U + off + v0, D, sVn, kVT, C, kVT);
    bgemm<true, false>(D, kVT, C, 1.f, sK, ldd, sVn, kVT, sS, kVT, true);
  }
  __syncthreads();
  if (a.final_state != nullptr) {
    for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) {
      const int i = idx / kVT, j = idx % kVT;
      a.final_state[bh * DD + static_cast<int64_t>(i) * D + v0 + j] = sS[idx];
    }
  }
}

// 3. O = scale·[Q S_prev + tril(QKᵀ) V_new] per chunk.
template <typename T>
__global__ void __launch_bounds__(kThreads) output_kernel(Args a) {
  extern __shared__ float sm[];
  const int C = a.C, D = a.D, ldd = D + 1, ldc = C + 1;
  float* sQ = sm;
  float* sK = sQ + C * ldd;
  float* sO = sK + C * ldd;
  float* sP = sO + C * ldd;
  const int64_t ch = blockIdx.x, bh = blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H, t0 = ch * C;
  load_rows<T>(sQ, ldd, a.q, b, h, t0, 0, D, a, a.l2 != 0, nullptr);
  load_rows<T>(sK, ldd, a.k, b, h, t0, 0, D, a, a.l2 != 0, nullptr);
  __syncthreads();
  bgemm<false, true>(C, C, D, 1.f, sQ, ldd, sK, ldd, sP, ldc, false);
  __syncthreads();
  mask_tril(sP, ldc, C, true);
  __syncthreads();
  const float* S = a.Hs + (bh * a.NC + ch) * static_cast<int64_t>(D) * D;
  const float* Vn = a.U + (bh * a.NC + ch) * static_cast<int64_t>(C) * D;
  bgemm<false, false>(C, D, D, a.scale, sQ, ldd, S, D, sO, ldd, false);
  bgemm<false, false>(C, D, C, a.scale, sP, ldc, Vn, D, sO, ldd, true);
  __syncthreads();
  const int c = static_cast<int>(a.T - t0 < C ? a.T - t0 : C);
  for (int idx = threadIdx.x; idx < c * D; idx += kThreads) {
    const int i = idx / D, j = idx - i * D;
    Io<T>::store(a.o, ((b * a.T + t0 + i) * a.H + h) * D + j, sO[i * ldd + j]);
  }
}

// 4. Reverse recurrence of dS for kVT columns; stores dS after each chunk.
template <typename T>
__global__ void __launch_bounds__(kThreads) dstate_kernel(Args a) {
  extern __shared__ float sm[];
  const int C = a.C, D = a.D, ldd = D + 1, ldc = C + 1;
  float* sdS = sm;               // D × kVT
  float* sQ = sdS + D * kVT;     // C × ldd
  float* sK = sQ + C * ldd;      // C × ldd
  float* sW = sK + C * ldd;      // C × ldd
  float* sP = sW + C * ldd;      // C × ldc
  float* sdO = sP + C * ldc;     // C × kVT
  float* sdVn = sdO + C * kVT;   // C × kVT
  const int64_t bh = blockIdx.x;
  const int v0 = blockIdx.y * kVT;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t DD = static_cast<int64_t>(D) * D;
  for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) sdS[idx] = 0.f;
  for (int64_t ch = a.NC - 1; ch >= 0; --ch) {
    __syncthreads();
    float* hs = a.dHs + (bh * a.NC + ch) * DD + v0;
    for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) {
      const int i = idx / kVT, j = idx % kVT;
      hs[static_cast<int64_t>(i) * D + j] = sdS[idx];
    }
    const int64_t off = (bh * a.NC + ch) * static_cast<int64_t>(C) * D;
    load_rows<T>(sQ, ldd, a.q, b, h, ch * C, 0, D, a, a.l2 != 0, nullptr);
    load_rows<T>(sK, ldd, a.k, b, h, ch * C, 0, D, a, a.l2 != 0, nullptr);
    load_rows<T>(sdO, kVT, a.do_, b, h, ch * C, v0, kVT, a, false, nullptr);
    copy_mat(sW, ldd, a.W + off, D, C, D);
    __syncthreads();
    bgemm<false, true>(C, C, D, 1.f, sQ, ldd, sK, ldd, sP, ldc, false);
    __syncthreads();
    mask_tril(sP, ldc, C, true);
    __syncthreads();
    bgemm<true, false>(C, kVT, C, a.scale, sP, ldc, sdO, kVT, sdVn, kVT, false);
    bgemm<false, false>(C, kVT, D, 1.f, sK, ldd, sdS, kVT, sdVn, kVT, true);
    __syncthreads();
    bgemm<true, false>(D, kVT, C, a.scale, sQ, ldd, sdO, kVT, sdS, kVT, true);
    bgemm<true, false>(D, kVT, C, -1.f, sW, ldd, sdVn, kVT, sdS, kVT, true);
  }
  __syncthreads();
  if (a.dh0 != nullptr) {
    for (int idx = threadIdx.x; idx < D * kVT; idx += kThreads) {
      const int i = idx / kVT, j = idx % kVT;
      a.dh0[bh * DD + static_cast<int64_t>(i) * D + v0 + j] = sdS[idx];
    }
  }
}

// Buffers of the grad kernel, in allocation order (shared memory first, the rest spills to
// the block's global scratch). Host and device use the same sizes.
struct GradLayout {
  static constexpr int kSmall = 4;   // bet, qn, kn, dbet: C each
  static constexpr int kCC = 7;      // N, T, P, KKt, dT, X, dA: C × (C+1)
  static constexpr int kCD = 11;     // Q, K, V, dO, W, Vn, dVn, dW, dQ, dK, dV: C × (D+1)
  static constexpr int kDD = 2;      // S, dS: D × (D+1)
  __host__ __device__ static int64_t total(int C, int D) {
    return static_cast<int64_t>(kSmall) * C + static_cast<int64_t>(kCC) * C * (C + 1) +
           static_cast<int64_t>(kCD) * C * (D + 1) + static_cast<int64_t>(kDD) * D * (D + 1);
  }
};

struct Arena {
  float* sm;
  int sm_cap;
  int sm_used;
  float* gl;
  int64_t gl_used;
  __device__ float* take(int n) {
    if (sm_used + n <= sm_cap) {
      float* p = sm + sm_used;
      sm_used += n;
      return p;
    }
    float* p = gl + gl_used;
    gl_used += n;
    return p;
  }
};

// 5. Every gradient of one chunk from S_prev (Hs), dS after it (dHs), W and V_new.
template <typename T>
__global__ void __launch_bounds__(kThreads) grad_kernel(Args a) {
  extern __shared__ float sm[];
  const int C = a.C, D = a.D, ldd = D + 1, ldc = C + 1;
  Arena ar{sm, a.smem_floats, 0, a.scratch + static_cast<int64_t>(blockIdx.x) * a.scratch_per_block,
           0};
  float* bet = ar.take(C);
  float* qn = ar.take(C);
  float* kn = ar.take(C);
  float* dbet = ar.take(C);
  float* N = ar.take(C * ldc);
  float* Tm = ar.take(C * ldc);
  float* P = ar.take(C * ldc);
  float* KKt = ar.take(C * ldc);
  float* dT = ar.take(C * ldc);
  float* X = ar.take(C * ldc);
  float* dA = ar.take(C * ldc);
  float* Q = ar.take(C * ldd);
  float* K = ar.take(C * ldd);
  float* V = ar.take(C * ldd);
  float* dO = ar.take(C * ldd);
  float* W = ar.take(C * ldd);
  float* Vn = ar.take(C * ldd);
  float* dVn = ar.take(C * ldd);
  float* dW = ar.take(C * ldd);
  float* dQ = ar.take(C * ldd);
  float* dK = ar.take(C * ldd);
  float* dV = ar.take(C * ldd);
  float* S = ar.take(D * ldd);
  float* dS = ar.take(D * ldd);
  const bool l2 = a.l2 != 0;

  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t ch = item % a.NC, bh = item / a.NC;
    const int64_t b = bh / a.H, h = bh % a.H, t0 = ch * C;
    const int64_t offc = (bh * a.NC + ch) * static_cast<int64_t>(C) * D;
    const int64_t offd = (bh * a.NC + ch) * static_cast<int64_t>(D) * D;
    load_rows<T>(Q, ldd, a.q, b, h, t0, 0, D, a, l2, qn);
    load_rows<T>(K, ldd, a.k, b, h, t0, 0, D, a, l2, kn);
    load_rows<T>(V, ldd, a.v, b, h, t0, 0, D, a, false, nullptr);
    load_rows<T>(dO, ldd, a.do_, b, h, t0, 0, D, a, false, nullptr);
    load_beta<T>(bet, a, b, h, t0);
    copy_mat(S, ldd, a.Hs + offd, D, D, D);
    copy_mat(dS, ldd, a.dHs + offd, D, D, D);
    copy_mat(W, ldd, a.W + offc, D, C, D);
    copy_mat(Vn, ldd, a.U + offc, D, C, D);
    __syncthreads();
    bgemm<false, true>(C, C, D, 1.f, K, ldd, K, ldd, KKt, ldc, false);
    bgemm<false, true>(C, C, D, 1.f, Q, ldd, K, ldd, P, ldc, false);
    __syncthreads();
    for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
      const int i = idx / C, j = idx - i * C;
      X[i * ldc + j] = j < i ? bet[i] * KKt[i * ldc + j] : 0.f;
      if (j > i) P[i * ldc + j] = 0.f;
    }
    __syncthreads();
    unit_lower_inverse(X, N, ldc, C);
    __syncthreads();
    for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
      const int i = idx / C, j = idx - i * C;
      Tm[i * ldc + j] = N[i * ldc + j] * bet[j];
    }
    // dV_new = scale·Pᵀ dO + K dS
    bgemm<true, false>(C, D, C, a.scale, P, ldc, dO, ldd, dVn, ldd, false);
    bgemm<false, false>(C, D, D, 1.f, K, ldd, dS, ldd, dVn, ldd, true);
    __syncthreads();
    // dP = scale·tril(dO V_newᵀ) (into P)
    bgemm<false, true>(C, C, D, a.scale, dO, ldd, Vn, ldd, P, ldc, false);
    __syncthreads();
    mask_tril(P, ldc, C, true);
    __syncthreads();
    // dQ = scale·dO Sᵀ + dP K; dK = dPᵀ Q + V_new dSᵀ; dW = −dV_new Sᵀ
    bgemm<false, true>(C, D, D, a.scale, dO, ldd, S, ldd, dQ, ldd, false);
    bgemm<false, false>(C, D, C, 1.f, P, ldc, K, ldd, dQ, ldd, true);
    bgemm<true, false>(C, D, C, 1.f, P, ldc, Q, ldd, dK, ldd, false);
    bgemm<false, true>(C, D, D, 1.f, Vn, ldd, dS, ldd, dK, ldd, true);
    bgemm<false, true>(C, D, D, -1.f, dVn, ldd, S, ldd, dW, ldd, false);
    __syncthreads();
    // dT = dV_new Vᵀ + dW Kᵀ; dV = Tᵀ dV_new; dK += Tᵀ dW
    bgemm<false, true>(C, C, D, 1.f, dVn, ldd, V, ldd, dT, ldc, false);
    bgemm<false, true>(C, C, D, 1.f, dW, ldd, K, ldd, dT, ldc, true);
    bgemm<true, false>(C, D, C, 1.f, Tm, ldc, dVn, ldd, dV, ldd, false);
    bgemm<true, false>(C, D, C, 1.f, Tm, ldc, dW, ldd, dK, ldd, true);
    __syncthreads();
    // X = Nᵀ dT; dβ_j = Σ_r N_rj dT_rj
    bgemm<true, false>(C, C, C, 1.f, N, ldc, dT, ldc, X, ldc, false);
    for (int j = threadIdx.x; j < C; j += kThreads) {
      float s = 0.f;
      for (int r = 0; r < C; ++r) s = fmaf(N[r * ldc + j], dT[r * ldc + j], s);
      dbet[j] = s;
    }
    __syncthreads();
    // dA = −X Tᵀ
    bgemm<false, true>(C, C, C, -1.f, X, ldc, Tm, ldc, dA, ldc, false);
    __syncthreads();
    for (int i = threadIdx.x; i < C; i += kThreads) {
      float s = 0.f;
      for (int j = 0; j < i; ++j) s = fmaf(dA[i * ldc + j], KKt[i * ldc + j], s);
      dbet[i] += s;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
      const int i = idx / C, j = idx - i * C;
      dA[i * ldc + j] = j < i ? dA[i * ldc + j] * bet[i] : 0.f;
    }
    __syncthreads();
    // dK += dA K + dAᵀ K
    bgemm<false, false>(C, D, C, 1.f, dA, ldc, K, ldd, dK, ldd, true);
    bgemm<true, false>(C, D, C, 1.f, dA, ldc, K, ldd, dK, ldd, true);
    __syncthreads();
    // l2 backward and stores.
    const int c = static_cast<int>(a.T - t0 < C ? a.T - t0 : C);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int r = warp; r < c; r += kThreads / 32) {
      const int64_t base = ((b * a.T + t0 + r) * a.H + h) * D;
      float dq_dot = 0.f, dk_dot = 0.f;
      if (l2) {
        for (int j = lane; j < D; j += 32) {
          dq_dot = fmaf(Q[r * ldd + j], dQ[r * ldd + j], dq_dot);
          dk_dot = fmaf(K[r * ldd + j], dK[r * ldd + j], dk_dot);
        }
        dq_dot = warp_sum(dq_dot);
        dk_dot = warp_sum(dk_dot);
      }
      for (int j = lane; j < D; j += 32) {
        float gq = dQ[r * ldd + j], gk = dK[r * ldd + j];
        if (l2) {
          gq = (gq - Q[r * ldd + j] * dq_dot) / qn[r];
          gk = (gk - K[r * ldd + j] * dk_dot) / kn[r];
        }
        if (a.dq != nullptr) Io<T>::store(a.dq, base + j, gq);
        if (a.dk != nullptr) Io<T>::store(a.dk, base + j, gk);
        if (a.dv != nullptr) Io<T>::store(a.dv, base + j, dV[r * ldd + j]);
      }
      if (lane == 0 && a.dbeta != nullptr) {
        Io<T>::store(a.dbeta, (b * a.T + t0 + r) * a.H + h, dbet[r]);
      }
    }
    __syncthreads();
  }
}

}  // namespace deltanet
}  // namespace lak
