// deltanet chunked forward / backward: request checks, workspace size and the dtype dispatch;
// the launchers are in chunk_launch.cuh, instantiated per dtype in chunk_f32.cu / chunk_bf16.cu
// (two units, so the build compiles them in parallel).
#include "chunk_launch.cuh"

namespace lak {
namespace deltanet {
namespace {

bool aligned(uint64_t ptr, uint64_t n) { return ptr % n == 0; }

}  // namespace

int chunk_check(const lak_op_params& p, bool backward) {
  if (p.K != p.V || (p.K != 64 && p.K != 128)) {
    return fail(LAK_ERR_UNSUPPORTED,
                "deltanet chunk supports K = V in {64, 128}; got K=%lld V=%lld",
                static_cast<long long>(p.K), static_cast<long long>(p.V));
  }
  if (p.chunk_size != 16 && p.chunk_size != 32 && p.chunk_size != 64) {
    return fail(LAK_ERR_UNSUPPORTED,
                "field 'chunk_size' is %lld; deltanet chunk supports 16, 32 and 64",
                static_cast<long long>(p.chunk_size));
  }
  const double elems = static_cast<double>(p.B) * static_cast<double>(p.T) *
                       static_cast<double>(p.H) * static_cast<double>(p.K);
  if (elems > 1.0e15) return fail(LAK_ERR_INVALID, "B*T*H*K = %.3g is too large", elems);
  if (p.B * p.H > 65535) {
    return fail(LAK_ERR_UNSUPPORTED, "deltanet chunk supports B*H <= 65535; got %lld",
                static_cast<long long>(p.B * p.H));
  }
  if ((p.T + p.chunk_size - 1) / p.chunk_size > 2147483647LL) {
    return fail(LAK_ERR_UNSUPPORTED, "T / chunk_size exceeds 2^31-1 chunks");
  }
  if (p.qk_l2norm != 0 && p.qk_l2norm != 1) {
    return fail(LAK_ERR_INVALID, "field 'qk_l2norm' is %lld; must be 0 or 1",
                static_cast<long long>(p.qk_l2norm));
  }
  if (p.normalize != 0) return fail(LAK_ERR_INVALID, "field 'normalize' must be 0 for deltanet");
  const uint64_t es = p.dtype == LAK_DTYPE_F32 ? 4 : 2;
  const struct {
    const char* name;
    uint64_t ptr;
    bool required;
    uint64_t align;
  } ptrs[] = {
      {"q", p.q, true, es},
      {"k", p.k, true, es},
      {"v", p.v, true, es},
      {"beta", p.beta, true, es},
      {"o", p.o, !backward, es},
      {"final_state", p.final_state, false, 4},
      {"h0", p.h0, false, 4},
      {"do_", p.do_, backward, es},
      {"dq", p.dq, false, es},
      {"dk", p.dk, false, es},
      {"dv", p.dv, false, es},
      {"dbeta", p.dbeta, false, es},
      {"dh0", p.dh0, false, 4},
  };
  for (const auto& x : ptrs) {
    if (x.required && x.ptr == 0) {
      return fail(LAK_ERR_INVALID, "field '%s' is a null pointer; deltanet %s needs it", x.name,
                  backward ? "backward" : "forward");
    }
    if (x.ptr != 0 && !aligned(x.ptr, x.align)) {
      return fail(LAK_ERR_INVALID, "field '%s' (0x%llx) is not %llu-byte aligned", x.name,
                  static_cast<unsigned long long>(x.ptr), static_cast<unsigned long long>(x.align));
    }
  }
  return LAK_OK;
}

size_t chunk_workspace(const lak_op_params& p) {
  const Plan pl = plan(p);
  const int64_t floats = 2 * pl.cd_floats + 2 * pl.dd_floats + pl.g_floats + pl.s_floats +
                         pl.grad_blocks * pl.grad_floats;
  return static_cast<size_t>(floats) * sizeof(float);
}

int chunk_fwd(const lak_op_params& p, cudaStream_t stream) {
  return p.dtype == LAK_DTYPE_BF16 ? chunk_fwd_bf16(p, stream) : chunk_fwd_f32(p, stream);
}

int chunk_bwd(const lak_op_params& p, cudaStream_t stream) {
  return p.dtype == LAK_DTYPE_BF16 ? chunk_bwd_bf16(p, stream) : chunk_bwd_f32(p, stream);
}

}  // namespace deltanet
}  // namespace lak
