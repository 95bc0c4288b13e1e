// lak_fill_random: device-side random inputs, so a 1M-token tensor never has to be drawn on
// the host. Element i depends only on (seed, i): a splitmix64 hash gives two uniforms and
// Box–Muller a normal deviate.
#include <cuda_bf16.h>

#include "runtime.h"

namespace {

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <typename T>
__global__ void fill_kernel(T* out, size_t n, int dist, uint64_t seed) {
  const uint64_t key = splitmix64(seed);
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint64_t h = splitmix64(key ^ i);
    // 24-bit uniforms in (0, 1]: u1 never 0, so the log is finite.
    const float u1 = (static_cast<float>(h >> 40) + 1.0f) * (1.0f / 16777216.0f);
    const float u2 = static_cast<float>((h >> 16) & 0xffffff) * (1.0f / 16777216.0f);
    float x = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
    if (dist == LAK_DIST_GATE) x = -log1pf(expf(-x)) * (1.0f / 16.0f);
    else if (dist == LAK_DIST_BETA) x = 1.0f / (1.0f + expf(-x));
    // f64 stores the same fp32 draw widened, so an f64 run sees exactly the f32 run's inputs.
    if constexpr (sizeof(T) == 2) out[i] = __float2bfloat16_rn(x);
    else out[i] = static_cast<T>(x);
  }
}

}  // namespace

extern "C" LAK_API int lak_fill_random(uint64_t ptr, size_t n, int64_t dtype, int64_t dist,
                                       uint64_t seed) {
  LAK_GUARD_BEGIN
  if (ptr == 0 && n > 0) return lak::fail(LAK_ERR_INVALID, "lak_fill_random: 'ptr' is null");
  if (dtype != LAK_DTYPE_F32 && dtype != LAK_DTYPE_BF16 && dtype != LAK_DTYPE_F64) {
    return lak::fail(LAK_ERR_INVALID, "lak_fill_random: dtype %lld is not LAK_DTYPE_*",
                     static_cast<long long>(dtype));
  }
  if (dist < LAK_DIST_NORMAL || dist > LAK_DIST_BETA) {
    return lak::fail(LAK_ERR_INVALID, "lak_fill_random: dist %lld is not LAK_DIST_*",
                     static_cast<long long>(dist));
  }
  if (n == 0) return LAK_OK;
  LAK_TRY(lak::enter());
  const int threads = 256;
  const size_t want = (n + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(want < 65536 ? want : 65536);
  if (dtype == LAK_DTYPE_BF16) {
    fill_kernel<<<blocks, threads, 0, lak::current_stream()>>>(
        reinterpret_cast<__nv_bfloat16*>(ptr), n, static_cast<int>(dist), seed);
  } else if (dtype == LAK_DTYPE_F64) {
    fill_kernel<<<blocks, threads, 0, lak::current_stream()>>>(reinterpret_cast<double*>(ptr), n,
                                                              static_cast<int>(dist), seed);
  } else {
    fill_kernel<<<blocks, threads, 0, lak::current_stream()>>>(reinterpret_cast<float*>(ptr), n,
                                                              static_cast<int>(dist), seed);
  }
  LAK_CUDA(cudaGetLastError(), "lak_fill_random launch");
  return LAK_OK;
  LAK_GUARD_END
}
