// Device memory: allocation with accounting, copies, memset, L2 flush.
#include <cstdio>
#include <mutex>
#include <new>
#include <unordered_map>

#include "runtime.h"

namespace lak {
namespace {
std::mutex g_mu;
std::unordered_map<uint64_t, size_t> g_sizes;  // live allocations
uint64_t g_in_use = 0;
uint64_t g_peak = 0;
std::unordered_map<int, std::pair<void*, size_t>> g_flush;  // per device L2 flush buffer
}  // namespace

int device_alloc(size_t bytes, void** out, const char* what) {
  *out = nullptr;
  if (bytes == 0) return fail(LAK_ERR_INVALID, "%s: cannot allocate 0 bytes", what);
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return fail(LAK_ERR_OOM, "%s: out of device memory allocating %zu bytes", what, bytes);
    }
    return cuda_fail(err, what);
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_sizes[reinterpret_cast<uint64_t>(p)] = bytes;
  g_in_use += bytes;
  if (g_in_use > g_peak) g_peak = g_in_use;
  *out = p;
  return LAK_OK;
}

int device_free(void* ptr) {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_sizes.find(reinterpret_cast<uint64_t>(ptr));
    if (it == g_sizes.end()) {
      return fail(LAK_ERR_INVALID, "lak_free: 0x%llx was not allocated by lak_malloc (or was "
                  "freed already)", static_cast<unsigned long long>(reinterpret_cast<uint64_t>(ptr)));
    }
    g_in_use -= it->second;
    g_sizes.erase(it);
  }
  LAK_CUDA(cudaFree(ptr), "cudaFree");
  return LAK_OK;
}

}  // namespace lak

extern "C" LAK_API int lak_malloc(size_t bytes, uint64_t* out) {
  LAK_GUARD_BEGIN
  if (out == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_malloc: 'out' is null");
  *out = 0;
  LAK_TRY(lak::enter());
  void* p = nullptr;
  LAK_TRY(lak::device_alloc(bytes, &p, "lak_malloc"));
  *out = reinterpret_cast<uint64_t>(p);
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_free(uint64_t ptr) {
  LAK_GUARD_BEGIN
  if (ptr == 0) return LAK_OK;
  LAK_TRY(lak::enter());
  return lak::device_free(reinterpret_cast<void*>(ptr));
  LAK_GUARD_END
}

extern "C" LAK_API int lak_memcpy_htod(uint64_t dst, const void* src, size_t bytes) {
  LAK_GUARD_BEGIN
  if (bytes == 0) return LAK_OK;
  if (dst == 0 || src == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_memcpy_htod: null pointer");
  LAK_TRY(lak::enter());
  cudaStream_t s = lak::current_stream();
  LAK_CUDA(cudaMemcpyAsync(reinterpret_cast<void*>(dst), src, bytes, cudaMemcpyHostToDevice, s),
           "cudaMemcpyAsync(host to device)");
  LAK_CUDA(cudaStreamSynchronize(s), "cudaStreamSynchronize after host-to-device copy");
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_memcpy_dtoh(void* dst, uint64_t src, size_t bytes) {
  LAK_GUARD_BEGIN
  if (bytes == 0) return LAK_OK;
  if (dst == nullptr || src == 0) return lak::fail(LAK_ERR_INVALID, "lak_memcpy_dtoh: null pointer");
  LAK_TRY(lak::enter());
  cudaStream_t s = lak::current_stream();
  LAK_CUDA(cudaMemcpyAsync(dst, reinterpret_cast<const void*>(src), bytes, cudaMemcpyDeviceToHost,
                           s),
           "cudaMemcpyAsync(device to host)");
  LAK_CUDA(cudaStreamSynchronize(s), "cudaStreamSynchronize after device-to-host copy");
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_memcpy_dtod(uint64_t dst, uint64_t src, size_t bytes) {
  LAK_GUARD_BEGIN
  if (bytes == 0) return LAK_OK;
  if (dst == 0 || src == 0) return lak::fail(LAK_ERR_INVALID, "lak_memcpy_dtod: null pointer");
  LAK_TRY(lak::enter());
  LAK_CUDA(cudaMemcpyAsync(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), bytes,
                           cudaMemcpyDeviceToDevice, lak::current_stream()),
           "cudaMemcpyAsync(device to device)");
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_memset(uint64_t ptr, int byte, size_t bytes) {
  LAK_GUARD_BEGIN
  if (bytes == 0) return LAK_OK;
  if (ptr == 0) return lak::fail(LAK_ERR_INVALID, "lak_memset: null pointer");
  if (byte < 0 || byte > 255) return lak::fail(LAK_ERR_INVALID, "lak_memset: byte %d not in 0..255", byte);
  LAK_TRY(lak::enter());
  LAK_CUDA(cudaMemsetAsync(reinterpret_cast<void*>(ptr), byte, bytes, lak::current_stream()),
           "cudaMemsetAsync");
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_memory_info(uint64_t* out4) {
  LAK_GUARD_BEGIN
  if (out4 == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_memory_info: 'out4' is null");
  LAK_TRY(lak::enter());
  size_t free_b = 0, total_b = 0;
  LAK_CUDA(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  std::lock_guard<std::mutex> lock(lak::g_mu);
  out4[0] = free_b;
  out4[1] = total_b;
  out4[2] = lak::g_in_use;
  out4[3] = lak::g_peak;
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_reset_peak(void) {
  std::lock_guard<std::mutex> lock(lak::g_mu);
  lak::g_peak = lak::g_in_use;
  return LAK_OK;
}

extern "C" LAK_API int lak_l2_flush(void) {
  LAK_GUARD_BEGIN
  LAK_TRY(lak::enter());
  const int dev = lak::selected_device();
  std::pair<void*, size_t> buf{nullptr, 0};
  {
    std::lock_guard<std::mutex> lock(lak::g_mu);
    auto it = lak::g_flush.find(dev);
    if (it != lak::g_flush.end()) buf = it->second;
  }
  if (buf.first == nullptr) {
    int l2 = 0;
    LAK_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev), "cudaDeviceGetAttribute");
    // Twice the L2 so no line of the op's data survives; not counted as library memory.
    const size_t bytes = 2 * static_cast<size_t>(l2 > 0 ? l2 : (64 << 20));
    void* p = nullptr;
    LAK_CUDA(cudaMalloc(&p, bytes), "cudaMalloc(L2 flush buffer)");
    buf = {p, bytes};
    std::lock_guard<std::mutex> lock(lak::g_mu);
    lak::g_flush[dev] = buf;
  }
  LAK_CUDA(cudaMemsetAsync(buf.first, 0, buf.second, lak::current_stream()), "L2 flush memset");
  return LAK_OK;
  LAK_GUARD_END
}
