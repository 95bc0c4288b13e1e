// Internal helpers shared by the runtime and the kernels' launchers: per-thread last error,
// CUDA status mapping, the selected device and the current stream.
#pragma once

#include <cuda_runtime.h>

#include <cstdarg>
#include <cstdint>
#include <new>

#include "../include/lak.h"

namespace lak {

// Records printf-style text as the calling thread's last error and returns `status`.
int fail(int status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Maps a CUDA error to a status, records "<what>: <cuda name>: <cuda text>" (with a hint for
// a missing driver or device) and returns the status. Also clears a non-sticky error.
int cuda_fail(cudaError_t err, const char* what);

// The device chosen with lak_set_device (process-wide) and made current on this thread.
int selected_device();
// cudaSetDevice(selected) on the calling thread; every entry point that touches CUDA calls it.
int enter();

cudaStream_t current_stream();

// Device memory accounting (lak_malloc / lak_free and internal scratch).
int device_alloc(size_t bytes, void** out, const char* what);
int device_free(void* ptr);

}  // namespace lak

// Returns from the calling function with a mapped status when a CUDA call fails.
#define LAK_CUDA(call, what)                        \
  do {                                              \
    cudaError_t lak_err_ = (call);                  \
    if (lak_err_ != cudaSuccess) return lak::cuda_fail(lak_err_, what); \
  } while (0)

// Returns from the calling function when a lak status is not LAK_OK.
#define LAK_TRY(expr)               \
  do {                              \
    int lak_st_ = (expr);           \
    if (lak_st_ != LAK_OK) return lak_st_; \
  } while (0)

// Wraps an entry point body so that no C++ exception can cross the C ABI.
#define LAK_GUARD_BEGIN try {
#define LAK_GUARD_END                                                        \
  }                                                                          \
  catch (const std::bad_alloc&) {                                            \
    return lak::fail(LAK_ERR_OOM, "host memory allocation failed");          \
  }                                                                          \
  catch (...) {                                                              \
    return lak::fail(LAK_ERR_CUDA, "internal error: unexpected C++ exception"); \
  }
