// The `quadratic` baselines (LAK_IMPL_QUADRATIC) of la and softmax: attention as PyTorch users
// write it, the B·H·T×T score matrix materialized in the workspace at the storage dtype and
// every step a separate launch (feature map, QKᵀ, causal mask, normalization, ·V, and the
// autograd-style backward). Matrix products go to cuBLAS (loaded at run time, see
// cublas_rt.h) with fp32 accumulation; the elementwise and row kernels here are plain.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "../runtime/runtime.h"
#include "cublas_rt.h"
#include "recurrent_kernels.cuh"  // Io<T>, phi, dphi

namespace lak {
namespace quad {

using rec::dphi;
using rec::Io;
using rec::phi;

constexpr int kThreads = 256;

inline size_t align256(size_t n) { return (n + 255) / 256 * 256; }

// a·b·c·d with overflow detection; false when the product does not fit in size_t.
inline bool mul_ok(size_t* out, size_t a, size_t b, size_t c = 1, size_t d = 1) {
  size_t x = 0;
  if (__builtin_mul_overflow(a, b, &x)) return false;
  if (__builtin_mul_overflow(x, c, &x)) return false;
  if (__builtin_mul_overflow(x, d, &x)) return false;
  *out = x;
  return true;
}

// A [B, ·, H, ·] operand of a per-(b, h) GEMM: row stride ld, head stride sh, batch stride sb
// (elements).
struct Mat {
  const void* p;
  int64_t ld, sh, sb;
};

inline size_t type_size(int t) { return t == blas::kR16BF ? 2 : 4; }

// Row-major C[b,h] = alpha·op(A[b,h])·op(B[b,h]) + beta·C[b,h]: one strided-batched call over
// the H heads per batch index b.
inline int gemm_bh(cudaStream_t s, int64_t B, int64_t H, bool ta, bool tb, int64_t M,
                   int64_t N, int64_t Kd, Mat A, Mat Bm, Mat C, float alpha, float beta,
                   int ab_type, int c_type) {
  const size_t ea = type_size(ab_type), ec = type_size(c_type);
  for (int64_t b = 0; b < B; ++b) {
    blas::Gemm g{};
    g.ta = ta;
    g.tb = tb;
    g.M = M;
    g.N = N;
    g.Kd = Kd;
    g.A = static_cast<const char*>(A.p) + static_cast<size_t>(b * A.sb) * ea;
    g.lda = A.ld;
    g.sA = A.sh;
    g.B = static_cast<const char*>(Bm.p) + static_cast<size_t>(b * Bm.sb) * ea;
    g.ldb = Bm.ld;
    g.sB = Bm.sh;
    g.C = const_cast<char*>(static_cast<const char*>(C.p)) + static_cast<size_t>(b * C.sb) * ec;
    g.ldc = C.ld;
    g.sC = C.sh;
    g.batch = H;
    g.alpha = alpha;
    g.beta = beta;
    g.ab_type = ab_type;
    g.c_type = c_type;
    LAK_TRY(blas::gemm(g, s));
  }
  return LAK_OK;
}

inline unsigned grid_for(int64_t n, int64_t per_block = kThreads) {
  int64_t g = (n + per_block - 1) / per_block;
  if (g > 1048576) g = 1048576;  // grid-stride loops cover the rest
  return static_cast<unsigned>(g < 1 ? 1 : g);
}

// y = φ(x), elementwise.
template <typename Dt>
__global__ void phi_kernel(const void* x, void* y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    Io<Dt>::store(y, i, phi(Io<Dt>::load(x, i)));
  }
}

// Causal mask of rows × T scores (row r is query t = r % T): entries j > t become `fill`.
template <typename Dt>
__global__ void mask_kernel(void* s, int64_t rows, int64_t T, float fill) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t t = r % T;
    for (int64_t j = t + 1 + threadIdx.x; j < T; j += blockDim.x) Io<Dt>::store(s, r * T + j, fill);
  }
}

__device__ __forceinline__ float block_sum(float x, float* sh) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = x;
  __syncthreads();
  float tot = 0.f;
  for (int w = 0; w < (int)(blockDim.x / 32); ++w) tot += sh[w];
  return tot;
}

__device__ __forceinline__ float block_max(float x, float* sh) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, off));
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = x;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < (int)(blockDim.x / 32); ++w) m = fmaxf(m, sh[w]);
  return m;
}

// out[r] = Σ_j s[r, j] over the whole (masked) row; one block per row.
template <typename Dt>
__global__ void rowsum_kernel(const void* s, float* out, int64_t rows, int64_t T) {
  __shared__ float sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float acc = 0.f;
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x) acc += Io<Dt>::load(s, r * T + j);
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0) out[r] = acc;
  }
}

// In place: s[r, :] = softmax(s[r, :]) over the whole (masked, −∞ above the diagonal) row.
template <typename Dt>
__global__ void softmax_kernel(void* s, int64_t rows, int64_t T) {
  __shared__ float sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x) m = fmaxf(m, Io<Dt>::load(s, r * T + j));
    m = block_max(m, sh);
    float l = 0.f;
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x) l += expf(Io<Dt>::load(s, r * T + j) - m);
    l = block_sum(l, sh);
    const float inv = 1.f / l;
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x) {
      Io<Dt>::store(s, r * T + j, expf(Io<Dt>::load(s, r * T + j) - m) * inv);
    }
  }
}

// Softmax backward in place of dP: D = Σ_j dP_rj P_rj; dS_rj = P_rj (dP_rj − D).
template <typename Dt>
__global__ void softmax_bwd_kernel(const void* p, void* dp, int64_t rows, int64_t T) {
  __shared__ float sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float d = 0.f;
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x) {
      d = fmaf(Io<Dt>::load(dp, r * T + j), Io<Dt>::load(p, r * T + j), d);
    }
    d = block_sum(d, sh);
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x) {
      const float pj = Io<Dt>::load(p, r * T + j);
      Io<Dt>::store(dp, r * T + j, pj * (Io<Dt>::load(dp, r * T + j) - d));
    }
  }
}

// Checks shared by both quadratic ops: dtype, dims, int ranges of the GEMMs, and the score
// buffers (at most 8 bytes per B·H·T·T entry) fitting in size_t.
inline int check_common(const lak_op_params& p, const char* name) {
  const struct {
    const char* name;
    int64_t value;
  } dims[] = {{"B", p.B}, {"T", p.T}, {"H", p.H}, {"K", p.K}, {"V", p.V}};
  for (const auto& d : dims) {
    if (d.value > 2147483647LL) {
      return fail(LAK_ERR_UNSUPPORTED, "field '%s' is %lld; %s/quadratic needs < 2^31", d.name,
                  static_cast<long long>(d.value), name);
    }
  }
  if (static_cast<double>(p.H) * (p.K > p.V ? p.K : p.V) > 2147483647.0) {
    return fail(LAK_ERR_UNSUPPORTED, "H*K or H*V exceeds 2^31-1");
  }
  const double elems = static_cast<double>(p.B) * p.T * p.H * (p.K > p.V ? p.K : p.V);
  if (elems > 1.0e17) return fail(LAK_ERR_INVALID, "B*T*H*max(K,V) = %.3g is too large", elems);
  const size_t es = p.dtype == LAK_DTYPE_F32 ? 4 : 2;
  size_t bytes = 0;
  if (!mul_ok(&bytes, static_cast<size_t>(p.B) * static_cast<size_t>(p.H),
              static_cast<size_t>(p.T), static_cast<size_t>(p.T), 8) ||
      bytes > (size_t{1} << 62)) {
    return fail(LAK_ERR_OOM,
                "%s/quadratic would need B*H*T*T = %.3g scores (%.3g bytes each buffer); that does "
                "not fit in memory",
                name, static_cast<double>(p.B) * p.H * p.T * p.T,
                static_cast<double>(p.B) * p.H * p.T * p.T * es);
  }
  return blas::available();
}

inline int check_ptrs_aligned(const char* name, uint64_t ptr, uint64_t align) {
  if (ptr % align != 0) {
    return fail(LAK_ERR_INVALID, "field '%s' (0x%llx) is not %llu-byte aligned", name,
                static_cast<unsigned long long>(ptr), static_cast<unsigned long long>(align));
  }
  return LAK_OK;
}

}  // namespace quad
}  // namespace lak
