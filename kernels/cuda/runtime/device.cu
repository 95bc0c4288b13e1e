// Device selection, device info, streams.
#include <atomic>
#include <cstdio>
#include <new>

#include "runtime.h"

namespace lak {
namespace {
std::atomic<int> g_device{0};
std::atomic<uint64_t> g_stream{0};
}  // namespace

int selected_device() { return g_device.load(); }

int enter() {
  // The current device is per thread, and calls may come from any thread (FFI nonblocking
  // calls run on worker threads), so every entry point makes the selected one current.
  LAK_CUDA(cudaSetDevice(g_device.load()), "cudaSetDevice");
  return LAK_OK;
}

cudaStream_t current_stream() { return reinterpret_cast<cudaStream_t>(g_stream.load()); }

}  // namespace lak

extern "C" LAK_API int lak_device_count(int* out) {
  LAK_GUARD_BEGIN
  if (out == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_device_count: 'out' is null");
  *out = 0;
  int n = 0;
  LAK_CUDA(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  if (n == 0) return lak::fail(LAK_ERR_NO_DEVICE, "cudaGetDeviceCount: no CUDA device found");
  *out = n;
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_set_device(int device) {
  LAK_GUARD_BEGIN
  int n = 0;
  LAK_CUDA(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  if (n == 0) return lak::fail(LAK_ERR_NO_DEVICE, "cudaGetDeviceCount: no CUDA device found");
  if (device < 0 || device >= n) {
    return lak::fail(LAK_ERR_INVALID, "lak_set_device: device %d out of range (%d device%s)",
                     device, n, n == 1 ? "" : "s");
  }
  LAK_CUDA(cudaSetDevice(device), "cudaSetDevice");
  lak::g_device.store(device);
  return LAK_OK;
  LAK_GUARD_END
}

static void json_escape(const char* in, char* out, size_t n) {
  size_t j = 0;
  for (size_t i = 0; in[i] != '\0' && j + 7 < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == '"' || c == '\\') {
      out[j++] = '\\';
      out[j++] = static_cast<char>(c);
    } else if (c < 0x20) {
      j += static_cast<size_t>(snprintf(out + j, n - j, "\\u%04x", c));
    } else {
      out[j++] = static_cast<char>(c);
    }
  }
  out[j] = '\0';
}

extern "C" LAK_API int lak_device_info_json(int device, char* buf, size_t n) {
  LAK_GUARD_BEGIN
  if (buf == nullptr || n == 0) {
    return lak::fail(LAK_ERR_INVALID, "lak_device_info_json: 'buf' is null or empty");
  }
  buf[0] = '\0';
  int count = 0;
  LAK_CUDA(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (count == 0) return lak::fail(LAK_ERR_NO_DEVICE, "cudaGetDeviceCount: no CUDA device found");
  if (device < 0 || device >= count) {
    return lak::fail(LAK_ERR_INVALID, "lak_device_info_json: device %d out of range (%d)", device,
                     count);
  }
  cudaDeviceProp prop;
  LAK_CUDA(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  int clock = 0, mem_clock = 0, driver = 0, runtime = 0;
  LAK_CUDA(cudaDeviceGetAttribute(&clock, cudaDevAttrClockRate, device), "cudaDeviceGetAttribute");
  LAK_CUDA(cudaDeviceGetAttribute(&mem_clock, cudaDevAttrMemoryClockRate, device),
           "cudaDeviceGetAttribute");
  LAK_CUDA(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
  LAK_CUDA(cudaRuntimeGetVersion(&runtime), "cudaRuntimeGetVersion");
  char name[512];
  json_escape(prop.name, name, sizeof name);
  const int w = snprintf(
      buf, n,
      "{\"name\":\"%s\",\"device\":%d,\"sm_count\":%d,\"compute_capability\":\"%d.%d\","
      "\"clock_khz\":%d,\"memory_clock_khz\":%d,\"memory_bus_bits\":%d,"
      "\"memory_total_bytes\":%zu,\"l2_bytes\":%d,\"shared_per_block_optin_bytes\":%zu,"
      "\"driver_version\":%d,\"runtime_version\":%d,\"abi_version\":%d,"
      "\"pci_bus_id\":\"%04x:%02x:%02x.0\"}",
      name, device, prop.multiProcessorCount, prop.major, prop.minor, clock, mem_clock,
      prop.memoryBusWidth, prop.totalGlobalMem, prop.l2CacheSize, prop.sharedMemPerBlockOptin,
      driver, runtime, LAK_ABI_VERSION, prop.pciDomainID, prop.pciBusID, prop.pciDeviceID);
  if (w < 0 || static_cast<size_t>(w) >= n) {
    buf[0] = '\0';
    return lak::fail(LAK_ERR_INVALID, "lak_device_info_json: buffer of %zu bytes is too small "
                     "(need %d)", n, w + 1);
  }
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_stream_create(uint64_t* out) {
  LAK_GUARD_BEGIN
  if (out == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_stream_create: 'out' is null");
  LAK_TRY(lak::enter());
  cudaStream_t s = nullptr;
  LAK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  *out = reinterpret_cast<uint64_t>(s);
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_stream_destroy(uint64_t stream) {
  LAK_GUARD_BEGIN
  if (stream == 0) return lak::fail(LAK_ERR_INVALID, "lak_stream_destroy: stream 0 is the default");
  LAK_TRY(lak::enter());
  if (lak::g_stream.load() == stream) lak::g_stream.store(0);
  LAK_CUDA(cudaStreamDestroy(reinterpret_cast<cudaStream_t>(stream)), "cudaStreamDestroy");
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_set_stream(uint64_t stream) {
  lak::g_stream.store(stream);
  return LAK_OK;
}

extern "C" LAK_API int lak_synchronize(void) {
  LAK_GUARD_BEGIN
  LAK_TRY(lak::enter());
  LAK_CUDA(cudaStreamSynchronize(lak::current_stream()), "cudaStreamSynchronize");
  // Surface errors of kernels that faulted since the last check.
  LAK_CUDA(cudaGetLastError(), "kernel execution");
  return LAK_OK;
  LAK_GUARD_END
}
