// la backward, chunked: checks, launches and instantiations (fp32 / bf16 × head dim 64 / 128
// × chunk size 16 / 32 / 64). Reruns the forward on the backward plan (writing o, final_state,
// final_z too), then the three backward kernels of chunk_bwd_kernel.cuh.
#include "../runtime/runtime.h"
#include "chunk_bwd_kernel.cuh"
#include "chunk_fwd.h"

namespace lak {
namespace la {
namespace {

template <typename F>
int set_smem(F f, size_t bytes, int optin, const char* what, int D) {
  if (bytes > static_cast<size_t>(optin)) {
    return fail(LAK_ERR_UNSUPPORTED,
                "la chunk backward with K=V=%d needs %zu bytes of shared memory per block; this "
                "device allows %d (%s)", D, bytes, optin, what);
  }
  LAK_CUDA(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(bytes)),
           what);
  return LAK_OK;
}

template <typename T, int D, int C>
int launch(const lak_op_params& p, cudaStream_t stream) {
  using Sm = BwdSmem<T, D, C>;
  const Plan pl = plan(p, true);
  float* ws = reinterpret_cast<float*>(p.workspace);
  const size_t sf = bwd_state_floats(p);
  BwdArgs a;
  a.q = reinterpret_cast<const void*>(p.q);
  a.k = reinterpret_cast<const void*>(p.k);
  a.v = reinterpret_cast<const void*>(p.v);
  a.dout = reinterpret_cast<const void*>(p.do_);
  a.dq = reinterpret_cast<void*>(p.dq);
  a.dk = reinterpret_cast<void*>(p.dk);
  a.dv = reinterpret_cast<void*>(p.dv);
  a.dh0 = reinterpret_cast<float*>(p.dh0);
  a.dz0 = reinterpret_cast<float*>(p.dz0);
  a.st = ws;
  a.dst = ws + sf;
  a.rowstat = ws + 2 * sf;
  a.B = p.B;
  a.T = p.T;
  a.H = p.H;
  a.n_chunks = pl.n_chunks;

  int dev = 0, optin = 0;
  LAK_CUDA(cudaGetDevice(&dev), "cudaGetDevice");
  LAK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
           "cudaDeviceGetAttribute");
  auto k4 = dstate_local_kernel<T, D, C>;
  auto k5 = dcarry_kernel<D>;
  auto k6 = bwd_chunk_kernel<T, D, C>;
  LAK_TRY(set_smem(k4, Sm::kLocalBytes, optin, "cudaFuncSetAttribute(la dstate_local)", D));
  LAK_TRY(set_smem(k6, Sm::kChunkBytes, optin, "cudaFuncSetAttribute(la bwd_chunk)", D));

  LAK_TRY(chunk_fwd_pass(p, stream, true));
  const int64_t bh = p.B * p.H;
  const dim3 grid(static_cast<unsigned>(pl.n_chunks), static_cast<unsigned>(bh));
  k4<<<grid, blk::kThreads, Sm::kLocalBytes, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch la dstate_local kernel");
  const int64_t elems = bh * (D * D + D);
  k5<<<static_cast<unsigned>((elems + blk::kThreads - 1) / blk::kThreads), blk::kThreads, 0,
       stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch la dcarry kernel");
  k6<<<grid, blk::kThreads, Sm::kChunkBytes, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch la bwd_chunk kernel");
  return LAK_OK;
}

// One instantiation per chunk size (chunk_size_ok); the request is checked.
template <typename T, int D>
int launch_chunk(const lak_op_params& p, cudaStream_t stream) {
  switch (p.chunk_size) {
    case 16:
      return launch<T, D, 16>(p, stream);
    case 32:
      return launch<T, D, 32>(p, stream);
    case 64:
      return launch<T, D, 64>(p, stream);
    default:
      return unsupported_chunk_size(p);
  }
}

}  // namespace

int chunk_bwd_check(const lak_op_params& p) {
  LAK_TRY(chunk_fwd_check(p));
  const uint64_t es = p.dtype == LAK_DTYPE_F32 ? 4 : 2;
  const struct {
    const char* name;
    uint64_t ptr;
    bool required;
    uint64_t align;
  } ptrs[] = {
      {"do_", p.do_, true, 16},  {"dq", p.dq, false, es},  {"dk", p.dk, false, es},
      {"dv", p.dv, false, es},  {"dh0", p.dh0, false, 4}, {"dz0", p.dz0, false, 4},
  };
  for (const auto& x : ptrs) {
    if (x.required && x.ptr == 0) {
      return fail(LAK_ERR_INVALID, "field '%s' is a null pointer; la backward needs it", x.name);
    }
    if (x.ptr != 0 && x.ptr % x.align != 0) {
      return fail(LAK_ERR_INVALID, "field '%s' (0x%llx) is not %llu-byte aligned", x.name,
                  static_cast<unsigned long long>(x.ptr), static_cast<unsigned long long>(x.align));
    }
  }
  return LAK_OK;
}

int chunk_bwd(const lak_op_params& p, cudaStream_t stream) {
  const bool bf16 = p.dtype == LAK_DTYPE_BF16;
  if (p.K == 64) {
    return bf16 ? launch_chunk<__nv_bfloat16, 64>(p, stream) : launch_chunk<float, 64>(p, stream);
  }
  return bf16 ? launch_chunk<__nv_bfloat16, 128>(p, stream) : launch_chunk<float, 128>(p, stream);
}

}  // namespace la
}  // namespace lak
