// CUDA events for device-side timing.
#include <new>

#include "runtime.h"

extern "C" LAK_API int lak_event_create(uint64_t* out) {
  LAK_GUARD_BEGIN
  if (out == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_event_create: 'out' is null");
  *out = 0;
  LAK_TRY(lak::enter());
  cudaEvent_t e = nullptr;
  LAK_CUDA(cudaEventCreate(&e), "cudaEventCreate");
  *out = reinterpret_cast<uint64_t>(e);
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_event_destroy(uint64_t event) {
  LAK_GUARD_BEGIN
  if (event == 0) return LAK_OK;
  LAK_TRY(lak::enter());
  LAK_CUDA(cudaEventDestroy(reinterpret_cast<cudaEvent_t>(event)), "cudaEventDestroy");
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_event_record(uint64_t event) {
  LAK_GUARD_BEGIN
  if (event == 0) return lak::fail(LAK_ERR_INVALID, "lak_event_record: event is 0");
  LAK_TRY(lak::enter());
  LAK_CUDA(cudaEventRecord(reinterpret_cast<cudaEvent_t>(event), lak::current_stream()),
           "cudaEventRecord");
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_event_elapsed_ms(uint64_t a, uint64_t b, float* out) {
  LAK_GUARD_BEGIN
  if (a == 0 || b == 0 || out == nullptr) {
    return lak::fail(LAK_ERR_INVALID, "lak_event_elapsed_ms: null event or 'out'");
  }
  LAK_TRY(lak::enter());
  LAK_CUDA(cudaEventSynchronize(reinterpret_cast<cudaEvent_t>(b)), "cudaEventSynchronize");
  LAK_CUDA(cudaEventElapsedTime(out, reinterpret_cast<cudaEvent_t>(a),
                                reinterpret_cast<cudaEvent_t>(b)),
           "cudaEventElapsedTime");
  return LAK_OK;
  LAK_GUARD_END
}
