// Block-level helpers shared by the gla and la chunk kernels: typed loads/stores of the storage
// dtype and a register-tiled shared-memory matmul for a 256-thread block seen as a 16 x 16 grid
// (thread (ty, tx) owns output rows ty + 16r and columns tx + 16c). Plain fp32 FMA.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lak {
namespace blk {

constexpr int kThreads = 256;

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

__device__ __forceinline__ int tx() { return threadIdx.x & 15; }
__device__ __forceinline__ int ty() { return threadIdx.x >> 4; }

template <int RM, int RN>
__device__ __forceinline__ void zero(float (&acc)[RM][RN]) {
#pragma unroll
  for (int r = 0; r < RM; ++r)
#pragma unroll
    for (int c = 0; c < RN; ++c) acc[r][c] = 0.f;
}

// acc[r][c] += Σ_{k < KD} a(ty + 16r, k) · b(k, tx + 16c).
template <int RM, int RN, int KD, class FA, class FB>
__device__ __forceinline__ void mm(float (&acc)[RM][RN], FA a, FB b) {
  const int x = tx(), y = ty();
#pragma unroll 4
  for (int k = 0; k < KD; ++k) {
    float ar[RM], br[RN];
#pragma unroll
    for (int r = 0; r < RM; ++r) ar[r] = a(y + 16 * r, k);
#pragma unroll
    for (int c = 0; c < RN; ++c) br[c] = b(k, x + 16 * c);
#pragma unroll
    for (int r = 0; r < RM; ++r)
#pragma unroll
      for (int c = 0; c < RN; ++c) acc[r][c] = fmaf(ar[r], br[c], acc[r][c]);
  }
}

// Rows [t0, t0 + C) of a [B,T,H,D] tensor for (b,h) into smem (row stride ld); rows at or past
// T are zero. F maps each loaded value.
template <typename T, int D, int C, class F>
__device__ __forceinline__ void load_rows(float* s, int ld, const void* g, int64_t b, int64_t h,
                                          int64_t t0, int64_t Tn, int64_t Hn, F f) {
  for (int idx = threadIdx.x; idx < C * D; idx += kThreads) {
    const int row = idx / D, col = idx % D;
    const int64_t t = t0 + row;
    float x = 0.f;
    if (t < Tn) x = f(Io<T>::load(g, ((b * Tn + t) * Hn + h) * D + col));
    s[row * ld + col] = x;
  }
}

struct Ident {
  __device__ __forceinline__ float operator()(float x) const { return x; }
};

// Inclusive cumsum down the rows of a C x D smem tile (row stride ld), one thread per column.
template <int D, int C>
__device__ __forceinline__ void cumsum_rows(float* s, int ld) {
  for (int col = threadIdx.x; col < D; col += kThreads) {
    float acc = 0.f;
    for (int r = 0; r < C; ++r) {
      acc += s[r * ld + col];
      s[r * ld + col] = acc;
    }
  }
}

}  // namespace blk
}  // namespace lak
