// The attention core's launchers (see flash.h): dispatch on dtype and head dim between the
// tensor-core kernels (bf16, flash_mma.cuh) and the SIMT kernels (flash_simt.cuh).
#include <cuda_bf16.h>

#include "../runtime/runtime.h"
#include "flash.h"
#include "flash_mma.cuh"
#include "flash_simt.cuh"

namespace lak {
namespace attn {
namespace {

int64_t qtiles_of(const Problem& p, int64_t tile) {
  const int64_t L = p.L < p.T ? p.L : p.T;
  return (L + tile - 1) / tile;
}

template <typename T, int D>
int fwd_launch(const Problem& p, cudaStream_t stream) {
  if (std::is_same<T, __nv_bfloat16>::value) {
    const int64_t qt = qtiles_of(p, MmaFwd<D>::kBr);
    auto k = fwd_mma<D>;
    const int bytes = static_cast<int>(MmaFwd<D>::kSmemBytes);
    LAK_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
             "cudaFuncSetAttribute(flash fwd_mma)");
    const dim3 grid(static_cast<unsigned>(p.nseg * qt), static_cast<unsigned>(p.B * p.H));
    k<<<grid, MmaFwd<D>::kThreads, bytes, stream>>>(p, qt);
    LAK_CUDA(cudaGetLastError(), "launch flash fwd_mma kernel");
    return LAK_OK;
  }
  const int64_t qt = qtiles_of(p, kTile);
  auto k = fwd_simt<T, D>;
  const int bytes = static_cast<int>(SimtFwdSmem<D>::kBytes);
  LAK_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
           "cudaFuncSetAttribute(flash fwd_simt)");
  const dim3 grid(static_cast<unsigned>(p.nseg * qt), static_cast<unsigned>(p.B * p.H));
  k<<<grid, kSimtThreads, bytes, stream>>>(p, qt);
  LAK_CUDA(cudaGetLastError(), "launch flash fwd_simt kernel");
  return LAK_OK;
}

template <typename T, int D>
int bwd_launch(const Problem& p, cudaStream_t stream) {
  if (std::is_same<T, __nv_bfloat16>::value) {
    const int64_t kt = qtiles_of(p, MmaBwd<D>::kBc) + (p.M > 0 ? 1 : 0);
    auto k = bwd_mma<D>;
    const int bytes = static_cast<int>(MmaBwd<D>::kSmemBytes);
    LAK_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
             "cudaFuncSetAttribute(flash bwd_mma)");
    const dim3 grid(static_cast<unsigned>(p.nseg * kt), static_cast<unsigned>(p.B * p.H));
    k<<<grid, MmaBwd<D>::kThreads, bytes, stream>>>(p, kt);
    LAK_CUDA(cudaGetLastError(), "launch flash bwd_mma kernel");
    return LAK_OK;
  }
  const int64_t qt = qtiles_of(p, kTile);
  const int64_t kt = qt + (p.M > 0 ? 1 : 0);
  auto k = bwd_simt<T, D>;
  const int bytes = static_cast<int>(SimtBwdSmem<D>::kBytes);
  LAK_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
           "cudaFuncSetAttribute(flash bwd_simt)");
  const dim3 grid(static_cast<unsigned>(p.nseg * kt), static_cast<unsigned>(p.B * p.H));
  k<<<grid, kSimtThreads, bytes, stream>>>(p, qt);
  LAK_CUDA(cudaGetLastError(), "launch flash bwd_simt kernel");
  return LAK_OK;
}

template <typename T>
__global__ void store_kernel(const float* __restrict__ src, T* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Io<T>::store(dst, i, src[i]);
  }
}

}  // namespace

// Sizes only, no CUDA calls (lak_op_workspace needs no GPU). The largest block (the fp32
// backward at D = 128, about 162 KiB of shared memory) fits sm_80's and sm_90's opt-in limits;
// a device with less fails at cudaFuncSetAttribute with LAK_ERR_CUDA.
int check(const Problem& p) {
  const int64_t qt = qtiles_of(p, kTile) + 1;
  if (p.B * p.H > 65535) return fail(LAK_ERR_UNSUPPORTED, "B*H exceeds 65535");
  if (p.nseg * qt > 2147483647LL) return fail(LAK_ERR_UNSUPPORTED, "T is too large");
  return LAK_OK;
}

int forward(const Problem& p, cudaStream_t stream) {
  if (p.bf16) {
    return p.D == 64 ? fwd_launch<__nv_bfloat16, 64>(p, stream)
                     : fwd_launch<__nv_bfloat16, 128>(p, stream);
  }
  return p.D == 64 ? fwd_launch<float, 64>(p, stream) : fwd_launch<float, 128>(p, stream);
}

int backward(const Problem& p, cudaStream_t stream) {
  if (p.bf16) {
    return p.D == 64 ? bwd_launch<__nv_bfloat16, 64>(p, stream)
                     : bwd_launch<__nv_bfloat16, 128>(p, stream);
  }
  return p.D == 64 ? bwd_launch<float, 64>(p, stream) : bwd_launch<float, 128>(p, stream);
}

int store_f32(const float* src, void* dst, int64_t n, bool bf16, cudaStream_t stream) {
  if (n <= 0) return LAK_OK;
  int64_t blocks = (n + 255) / 256;
  if (blocks > 65536) blocks = 65536;
  if (bf16) {
    store_kernel<__nv_bfloat16><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(
        src, static_cast<__nv_bfloat16*>(dst), n);
  } else {
    store_kernel<float><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(
        src, static_cast<float*>(dst), n);
  }
  LAK_CUDA(cudaGetLastError(), "launch attention store kernel");
  return LAK_OK;
}

}  // namespace attn
}  // namespace lak
