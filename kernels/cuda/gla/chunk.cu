// gla chunked forward and backward: request checks, workspace size, launches and the
// instantiations (fp32 / bf16 storage × head dim 64 / 128 × chunk size 16 / 32 / 64).
#include <cmath>

#include "../runtime/runtime.h"
#include "chunk.h"
#include "chunk_kernel.cuh"

namespace lak {
namespace gla {
namespace {

// The chunk sizes C with a compiled instantiation of the kernels (a template argument each);
// chunk_size must be one of them (64 is the default, docs/ops.md).
bool chunk_size_ok(int64_t c) { return c == 16 || c == 32 || c == 64; }

int unsupported_chunk_size(const lak_op_params& p) {
  return fail(LAK_ERR_UNSUPPORTED, "field 'chunk_size' is %lld; gla chunk supports 16, 32 and 64",
              static_cast<long long>(p.chunk_size));
}

// Forward: aim for this many (segment, b·h) blocks, several waves on 132 SMs, while keeping
// the workspace (one D×D + D fp32 summary per block) small.
constexpr int64_t kTargetBlocks = 2048;

struct Plan {
  int64_t n_chunks, cps, nseg;
};

Plan plan(const lak_op_params& p, bool backward) {
  Plan pl;
  pl.n_chunks = (p.T + p.chunk_size - 1) / p.chunk_size;
  int64_t cps = 1;
  if (!backward) {
    cps = (pl.n_chunks * p.B * p.H) / kTargetBlocks;
    if (cps < 1) cps = 1;
    if (cps > pl.n_chunks) cps = pl.n_chunks;
  }
  pl.cps = cps;
  pl.nseg = (pl.n_chunks + cps - 1) / cps;
  return pl;
}

size_t state_floats(const lak_op_params& p, const Plan& pl) {
  return static_cast<size_t>(p.B * p.H) * static_cast<size_t>(pl.nseg) *
         static_cast<size_t>(p.K * p.K + p.K);
}

size_t workspace_bytes(const lak_op_params& p, bool backward) {
  const Plan pl = plan(p, backward);
  size_t f = state_floats(p, pl);
  if (backward) f += static_cast<size_t>(p.B * p.H) * pl.n_chunks * static_cast<size_t>(p.K * p.K);
  return f * sizeof(float);
}

template <typename F>
int set_smem(F f, size_t bytes, int optin, const char* what, int D) {
  if (bytes > static_cast<size_t>(optin)) {
    return fail(LAK_ERR_UNSUPPORTED,
                "gla chunk %s with K=V=%d needs %zu bytes of shared memory per block; this device "
                "allows %d", what, D, bytes, optin);
  }
  LAK_CUDA(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(bytes)),
           what);
  return LAK_OK;
}

template <typename T, int D, int C>
int launch(const lak_op_params& p, cudaStream_t stream, bool backward) {
  using Sm = Smem<D, C>;
  const Plan pl = plan(p, backward);
  Args a;
  a.q = reinterpret_cast<const void*>(p.q);
  a.k = reinterpret_cast<const void*>(p.k);
  a.v = reinterpret_cast<const void*>(p.v);
  a.g = reinterpret_cast<const void*>(p.g);
  a.dout = reinterpret_cast<const void*>(p.do_);
  a.h0 = reinterpret_cast<const float*>(p.h0);
  a.o = reinterpret_cast<void*>(p.o);
  a.final_state = reinterpret_cast<float*>(p.final_state);
  a.dq = reinterpret_cast<void*>(p.dq);
  a.dk = reinterpret_cast<void*>(p.dk);
  a.dv = reinterpret_cast<void*>(p.dv);
  a.dg = reinterpret_cast<void*>(p.dg);
  a.dh0 = reinterpret_cast<float*>(p.dh0);
  float* ws = reinterpret_cast<float*>(p.workspace);
  const int64_t bh = p.B * p.H;
  a.st = ws;
  a.gsum = ws + bh * pl.nseg * D * D;
  a.dst = ws + state_floats(p, pl);
  a.B = p.B;
  a.T = p.T;
  a.H = p.H;
  a.n_chunks = pl.n_chunks;
  a.cps = pl.cps;
  a.nseg = pl.nseg;
  a.scale = static_cast<float>(p.scale);

  int dev = 0, optin = 0;
  LAK_CUDA(cudaGetDevice(&dev), "cudaGetDevice");
  LAK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
           "cudaDeviceGetAttribute");
  auto k1 = seg_state_kernel<T, D, C>;
  auto k2 = carry_kernel<D>;
  auto k3 = output_kernel<T, D, C>;
  LAK_TRY(set_smem(k1, Sm::kStateBytes, optin, "cudaFuncSetAttribute(gla seg_state)", D));
  LAK_TRY(set_smem(k3, Sm::kOutBytes, optin, "cudaFuncSetAttribute(gla output)", D));

  const dim3 grid(static_cast<unsigned>(pl.nseg), static_cast<unsigned>(bh));
  const unsigned scan_blocks = static_cast<unsigned>((bh * D * D + kThreads - 1) / kThreads);
  k1<<<grid, kThreads, Sm::kStateBytes, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch gla seg_state kernel");
  k2<<<scan_blocks, kThreads, 0, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch gla carry kernel");
  if (!backward) {
    k3<<<grid, kThreads, Sm::kOutBytes, stream>>>(a);
    LAK_CUDA(cudaGetLastError(), "launch gla output kernel");
    return LAK_OK;
  }

  auto k4 = dstate_local_kernel<T, D, C>;
  auto k5 = dcarry_kernel<D>;
  auto k6 = bwd_chunk_kernel<T, D, C>;
  LAK_TRY(set_smem(k4, Sm::kDLocalBytes, optin, "cudaFuncSetAttribute(gla dstate_local)", D));
  LAK_TRY(set_smem(k6, Sm::kBwdBytes, optin, "cudaFuncSetAttribute(gla bwd_chunk)", D));
  k4<<<grid, kThreads, Sm::kDLocalBytes, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch gla dstate_local kernel");
  k5<<<scan_blocks, kThreads, 0, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch gla dcarry kernel");
  k6<<<grid, kThreads, Sm::kBwdBytes, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch gla bwd_chunk kernel");
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

int run(const lak_op_params& p, cudaStream_t stream, bool backward) {
  const bool bf16 = p.dtype == LAK_DTYPE_BF16;
  if (p.K == 64) {
    return bf16 ? launch_chunk<__nv_bfloat16, 64>(p, stream, backward)
                : launch_chunk<float, 64>(p, stream, backward);
  }
  return bf16 ? launch_chunk<__nv_bfloat16, 128>(p, stream, backward)
              : launch_chunk<float, 128>(p, stream, backward);
}

}  // namespace

int chunk_check(const lak_op_params& p, bool backward) {
  if (p.K != p.V || (p.K != 64 && p.K != 128)) {
    return fail(LAK_ERR_UNSUPPORTED, "gla chunk supports K = V in {64, 128}; got K=%lld V=%lld",
                static_cast<long long>(p.K), static_cast<long long>(p.V));
  }
  if (!chunk_size_ok(p.chunk_size)) return unsupported_chunk_size(p);
  const double elems = static_cast<double>(p.B) * p.T * p.H * p.K;
  if (elems > 4.0e18) return fail(LAK_ERR_INVALID, "B*T*H*K = %.3g is too large", elems);
  if (p.B * p.H > 65535) return fail(LAK_ERR_UNSUPPORTED, "B*H = %lld exceeds 65535",
                                     static_cast<long long>(p.B * p.H));
  if ((p.T + p.chunk_size - 1) / p.chunk_size > 2147483647LL) {
    return fail(LAK_ERR_UNSUPPORTED, "T = %lld has too many chunks", static_cast<long long>(p.T));
  }
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
      {"g", p.g, true, 16},
      {"o", p.o, !backward, es},
      {"final_state", p.final_state, true, 4},
      {"h0", p.h0, false, 4},
      {"do_", p.do_, backward, 16},
      {"dq", p.dq, false, es},
      {"dk", p.dk, false, es},
      {"dv", p.dv, false, es},
      {"dg", p.dg, false, es},
      {"dh0", p.dh0, false, 4},
  };
  for (const auto& x : ptrs) {
    if (x.required && x.ptr == 0) {
      return fail(LAK_ERR_INVALID, "field '%s' is a null pointer; gla %s needs it", x.name,
                  backward ? "backward" : "forward");
    }
    if (x.ptr != 0 && x.ptr % x.align != 0) {
      return fail(LAK_ERR_INVALID, "field '%s' (0x%llx) is not %llu-byte aligned", x.name,
                  static_cast<unsigned long long>(x.ptr), static_cast<unsigned long long>(x.align));
    }
  }
  return LAK_OK;
}

size_t chunk_workspace(const lak_op_params& p) {
  // The backward's per-chunk states are large (GBs at T = 2^20): counted only when do_ is set,
  // i.e. when the request can be a backward one.
  const size_t f = workspace_bytes(p, false);
  if (p.do_ == 0) return f;
  const size_t b = workspace_bytes(p, true);
  return f > b ? f : b;
}

int chunk_fwd(const lak_op_params& p, cudaStream_t stream) { return run(p, stream, false); }
int chunk_bwd(const lak_op_params& p, cudaStream_t stream) { return run(p, stream, true); }

}  // namespace gla
}  // namespace lak
