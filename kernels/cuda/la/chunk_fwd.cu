// la forward, chunked: request checks, workspace size, launch, and the instantiations
// (fp32 / bf16 storage × head dim 64 / 128 × chunk size 16 / 32 / 64).
#include <cmath>
#include <new>

#include "../runtime/runtime.h"
#include "chunk_fwd.h"
#include "chunk_fwd_kernel.cuh"

namespace lak {
namespace la {
namespace {

// Aim for this many (segment, b·h) blocks, enough to fill 132 SMs several times over while
// keeping the workspace (one D×(D+1) fp32 summary per block) small.
constexpr int64_t kTargetBlocks = 2048;

template <typename T, int D, int C>
int launch(const lak_op_params& p, cudaStream_t stream, bool backward) {
  const Plan pl = plan(p, backward);
  Args a;
  a.q = reinterpret_cast<const void*>(p.q);
  a.k = reinterpret_cast<const void*>(p.k);
  a.v = reinterpret_cast<const void*>(p.v);
  a.h0 = reinterpret_cast<const float*>(p.h0);
  a.z0 = reinterpret_cast<const float*>(p.z0);
  a.o = reinterpret_cast<void*>(p.o);
  a.final_state = reinterpret_cast<float*>(p.final_state);
  a.final_z = p.normalize ? reinterpret_cast<float*>(p.final_z) : nullptr;
  a.ws = reinterpret_cast<float*>(p.workspace);
  a.B = p.B;
  a.T = p.T;
  a.H = p.H;
  a.n_chunks = pl.n_chunks;
  a.cps = pl.cps;
  a.nseg = pl.nseg;
  a.scale = static_cast<float>(p.scale);
  a.normalize = static_cast<int>(p.normalize);
  a.dout = backward ? reinterpret_cast<const void*>(p.do_) : nullptr;
  a.rowstat = backward ? a.ws + 2 * bwd_state_floats(p) : nullptr;

  int dev = 0, optin = 0;
  LAK_CUDA(cudaGetDevice(&dev), "cudaGetDevice");
  LAK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
           "cudaDeviceGetAttribute");
  const size_t need = Smem<T, D, C>::kOutBytes;
  if (need > static_cast<size_t>(optin)) {
    return fail(LAK_ERR_UNSUPPORTED,
                "la chunk forward with K=V=%d needs %zu bytes of shared memory per block; this "
                "device allows %d", D, need, optin);
  }
  auto k1 = seg_state_kernel<T, D, C>;
  auto k2 = carry_kernel<D>;
  auto k3 = output_kernel<T, D, C>;
  LAK_CUDA(cudaFuncSetAttribute(k1, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(Smem<T, D, C>::kStateBytes)),
           "cudaFuncSetAttribute(la seg_state)");
  LAK_CUDA(cudaFuncSetAttribute(k3, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(need)),
           "cudaFuncSetAttribute(la output)");

  const int64_t bh = p.B * p.H;
  const dim3 grid(static_cast<unsigned>(pl.nseg), static_cast<unsigned>(bh));
  k1<<<grid, kThreads, Smem<T, D, C>::kStateBytes, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch la seg_state kernel");
  const int64_t elems = bh * (D * D + D);
  k2<<<static_cast<unsigned>((elems + kThreads - 1) / kThreads), kThreads, 0, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch la carry kernel");
  k3<<<grid, kThreads, need, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch la output kernel");
  return LAK_OK;
}

// One instantiation per chunk size (chunk_size_ok); the request is checked.
template <typename T, int D>
int launch_chunk(const lak_op_params& p, cudaStream_t stream, bool backward) {
  switch (p.chunk_size) {
    case 16:
      return launch<T, D, 16>(p, stream, backward);
    case 32:
      return launch<T, D, 32>(p, stream, backward);
    case 64:
      return launch<T, D, 64>(p, stream, backward);
    default:
      return unsupported_chunk_size(p);
  }
}

bool aligned(uint64_t ptr, uint64_t n) { return ptr % n == 0; }

}  // namespace

int unsupported_chunk_size(const lak_op_params& p) {
  return fail(LAK_ERR_UNSUPPORTED, "field 'chunk_size' is %lld; la chunk supports 16, 32 and 64",
              static_cast<long long>(p.chunk_size));
}

Plan plan(const lak_op_params& p, bool backward) {
  Plan pl;
  pl.n_chunks = (p.T + p.chunk_size - 1) / p.chunk_size;
  const int64_t bh = p.B * p.H;
  int64_t cps = 1;
  if (!backward) {
    cps = (pl.n_chunks * bh) / kTargetBlocks;
    if (cps < 1) cps = 1;
    if (cps > pl.n_chunks) cps = pl.n_chunks;
  }
  pl.cps = cps;
  pl.nseg = (pl.n_chunks + cps - 1) / cps;
  return pl;
}

size_t bwd_state_floats(const lak_op_params& p) {
  return static_cast<size_t>(p.B * p.H) * static_cast<size_t>(plan(p, true).n_chunks) *
         static_cast<size_t>(p.K * (p.K + 1));
}

int chunk_fwd_check(const lak_op_params& p) {
  if (p.impl != LAK_IMPL_CHUNK) {
    return fail(LAK_ERR_UNSUPPORTED, "field 'impl' is %lld; la has only impl 0 (chunk)",
                static_cast<long long>(p.impl));
  }
  if (p.K != p.V || (p.K != 64 && p.K != 128)) {
    return fail(LAK_ERR_UNSUPPORTED, "la chunk forward supports K = V in {64, 128}; got K=%lld V=%lld",
                static_cast<long long>(p.K), static_cast<long long>(p.V));
  }
  if (!chunk_size_ok(p.chunk_size)) return unsupported_chunk_size(p);
  // Element counts must stay well inside int64 (index math is 64-bit) and grid limits.
  const double elems = static_cast<double>(p.B) * p.T * p.H * p.K;
  if (elems > 4.0e18) return fail(LAK_ERR_INVALID, "B*T*H*K = %.3g is too large", elems);
  if (p.B * p.H > 65535) {
    return fail(LAK_ERR_UNSUPPORTED, "B*H = %lld exceeds 65535", static_cast<long long>(p.B * p.H));
  }
  // The backward's grid has one block per chunk along x.
  if ((p.T + p.chunk_size - 1) / p.chunk_size > 2147483647LL) {
    return fail(LAK_ERR_UNSUPPORTED, "T = %lld has too many chunks", static_cast<long long>(p.T));
  }
  if (p.normalize != 0 && p.normalize != 1) {
    return fail(LAK_ERR_INVALID, "field 'normalize' is %lld; must be 0 or 1",
                static_cast<long long>(p.normalize));
  }
  if (p.qk_l2norm != 0) return fail(LAK_ERR_INVALID, "field 'qk_l2norm' must be 0 for la");
  const uint64_t es = p.dtype == LAK_DTYPE_F32 ? 4 : 2;
  const struct {
    const char* name;
    uint64_t ptr;
    bool required;
    uint64_t align;
  } ptrs[] = {
      {"q", p.q, true, 16},
      {"k", p.k, true, 16},
      {"v", p.v, true, 16},
      {"o", p.o, true, es},
      {"final_state", p.final_state, true, 4},
      {"final_z", p.final_z, p.normalize != 0, 4},
      {"h0", p.h0, false, 4},
      {"z0", p.z0, false, 4},
  };
  for (const auto& x : ptrs) {
    if (x.required && x.ptr == 0) {
      return fail(LAK_ERR_INVALID, "field '%s' is a null pointer; la forward%s needs it", x.name,
                  x.ptr == p.final_z ? " with normalize=1" : "");
    }
    if (x.ptr != 0 && !aligned(x.ptr, x.align)) {
      return fail(LAK_ERR_INVALID, "field '%s' (0x%llx) is not %llu-byte aligned", x.name,
                  static_cast<unsigned long long>(x.ptr), static_cast<unsigned long long>(x.align));
    }
  }
  return LAK_OK;
}

size_t chunk_workspace(const lak_op_params& p) {
  const Plan pl = plan(p, false);
  const size_t fwd = static_cast<size_t>(p.B * p.H) * static_cast<size_t>(pl.nseg) *
                     static_cast<size_t>(p.K * (p.K + 1)) * sizeof(float);
  // The backward's per-chunk states are large (GBs at T = 2^20): counted only when do_ is set,
  // i.e. when the request can be a backward one.
  if (p.do_ == 0) return fwd;
  const size_t bwd = (2 * bwd_state_floats(p) +
                      static_cast<size_t>(p.B * p.H) * plan(p, true).n_chunks * p.chunk_size * 2) *
                     sizeof(float);
  return fwd > bwd ? fwd : bwd;
}

int chunk_fwd_pass(const lak_op_params& p, cudaStream_t stream, bool backward) {
  const bool bf16 = p.dtype == LAK_DTYPE_BF16;
  if (p.K == 64) {
    return bf16 ? launch_chunk<__nv_bfloat16, 64>(p, stream, backward)
                : launch_chunk<float, 64>(p, stream, backward);
  }
  return bf16 ? launch_chunk<__nv_bfloat16, 128>(p, stream, backward)
              : launch_chunk<float, 128>(p, stream, backward);
}

int chunk_fwd(const lak_op_params& p, cudaStream_t stream) {
  return chunk_fwd_pass(p, stream, false);
}

}  // namespace la
}  // namespace lak
