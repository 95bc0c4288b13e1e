// Per-thread last error text and CUDA status mapping.
#include <cstdio>
#include <cstring>
#include <new>

#include "runtime.h"

namespace lak {
namespace {
thread_local char g_last_error[1024] = "";
}

int fail(int status, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
  va_end(ap);
  // Keep it one line: callers print it as such.
  for (char* c = g_last_error; *c; ++c) {
    if (*c == '\n' || *c == '\r') *c = ' ';
  }
  return status;
}

int cuda_fail(cudaError_t err, const char* what) {
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  const char* name = cudaGetErrorName(err);
  const char* text = cudaGetErrorString(err);
  switch (err) {
    case cudaErrorInsufficientDriver:
    case cudaErrorStubLibrary:
    case cudaErrorCallRequiresNewerDriver:
      return fail(LAK_ERR_NO_DRIVER,
                  "%s: no usable CUDA driver (%s: %s); liblak needs libcuda.so.1 from an NVIDIA "
                  "driver supporting CUDA %d.%d",
                  what, name, text, CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10);
    case cudaErrorNoDevice:
      return fail(LAK_ERR_NO_DEVICE, "%s: no CUDA device found (%s: %s)", what, name, text);
    case cudaErrorMemoryAllocation:
      return fail(LAK_ERR_OOM, "%s: out of device memory (%s)", what, name);
    case cudaErrorInvalidDevice:
      return fail(LAK_ERR_INVALID, "%s: invalid device (%s: %s)", what, name, text);
    default:
      return fail(LAK_ERR_CUDA, "%s: %s: %s", what, name, text);
  }
}

}  // namespace lak

extern "C" LAK_API int lak_last_error(char* buf, size_t n) {
  if (buf == nullptr || n == 0) return LAK_ERR_INVALID;
  const size_t len = strnlen(lak::g_last_error, sizeof lak::g_last_error);
  const size_t m = len < n - 1 ? len : n - 1;
  memcpy(buf, lak::g_last_error, m);
  buf[m] = '\0';
  return LAK_OK;
}

extern "C" LAK_API int lak_abi_version(int* out) {
  if (out == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_abi_version: 'out' is null");
  *out = LAK_ABI_VERSION;
  return LAK_OK;
}

extern "C" LAK_API int lak_params_size(size_t* out) {
  if (out == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_params_size: 'out' is null");
  *out = sizeof(lak_op_params);
  return LAK_OK;
}

static_assert(sizeof(lak_op_params) == 8 * LAK_OP_PARAMS_FIELDS,
              "lak_op_params must be LAK_OP_PARAMS_FIELDS 8-byte fields");
static_assert(offsetof(lak_op_params, workspace_bytes) == 8 * 35, "lak_op_params layout");
