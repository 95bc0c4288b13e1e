// softmax's `quadratic` baseline (LAK_IMPL_QUADRATIC): S = scale·QKᵀ (cuBLAS) into a
// B·H·T×T buffer, causal mask (−∞), row softmax, O = P·V (cuBLAS); the backward recomputes P,
// then dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = scale·dS·K, dK = scale·dSᵀ·Q,
// dV = Pᵀ·dO, each a separate launch. See common/quadratic.cuh.
#include "../common/quadratic.cuh"
#include "../runtime/op_registry.h"

namespace lak {
namespace {

using quad::Mat;

size_t scores_bytes(const lak_op_params& p) {
  const size_t es = p.dtype == LAK_DTYPE_F32 ? 4 : 2;
  return quad::align256(static_cast<size_t>(p.B * p.H) * static_cast<size_t>(p.T) *
                        static_cast<size_t>(p.T) * es);
}

int check(const lak_op_params& p, bool backward) {
  LAK_TRY(quad::check_common(p, "softmax"));
  const uint64_t es = p.dtype == LAK_DTYPE_F32 ? 4 : 2;
  const struct {
    const char* name;
    uint64_t ptr;
    bool required, allowed;
  } ptrs[] = {
      {"q", p.q, true, true},          {"k", p.k, true, true},
      {"v", p.v, true, true},          {"o", p.o, true, true},
      {"do_", p.do_, backward, true},  {"dq", p.dq, false, true},
      {"dk", p.dk, false, true},       {"dv", p.dv, false, true},
      {"g", p.g, false, false},        {"beta", p.beta, false, false},
      {"mem", p.mem, false, false},    {"h0", p.h0, false, false},
      {"z0", p.z0, false, false},      {"final_state", p.final_state, false, false},
      {"final_z", p.final_z, false, false},
  };
  for (const auto& x : ptrs) {
    if (x.required && x.ptr == 0) {
      return fail(LAK_ERR_INVALID, "field '%s' is a null pointer; softmax/quadratic needs it",
                  x.name);
    }
    if (!x.allowed && x.ptr != 0) {
      return fail(LAK_ERR_INVALID, "field '%s' must be 0 (absent) for softmax", x.name);
    }
    LAK_TRY(quad::check_ptrs_aligned(x.name, x.ptr, es));
  }
  return LAK_OK;
}

// One score buffer for the forward, two for the backward (P and dP); a request with do_ set
// is sized for the backward.
size_t workspace(const lak_op_params& p) { return scores_bytes(p) * (p.do_ ? 2 : 1); }

template <typename Dt>
int run(const lak_op_params& p, bool backward, cudaStream_t s) {
  const int ty = p.dtype == LAK_DTYPE_F32 ? blas::kR32F : blas::kR16BF;
  const int64_t B = p.B, T = p.T, H = p.H, K = p.K, V = p.V;
  const float scale = static_cast<float>(p.scale);
  char* ws = reinterpret_cast<char*>(p.workspace);
  void* sc = ws;
  void* dsc = backward ? ws + scores_bytes(p) : nullptr;
  const Mat Sm{sc, T, T * T, H * T * T};
  const Mat Qm{reinterpret_cast<const void*>(p.q), H * K, K, T * H * K};
  const Mat Km{reinterpret_cast<const void*>(p.k), H * K, K, T * H * K};
  const Mat Vm{reinterpret_cast<const void*>(p.v), H * V, V, T * H * V};
  const Mat Om{reinterpret_cast<const void*>(p.o), H * V, V, T * H * V};
  const int64_t rows = B * H * T;

  LAK_TRY(quad::gemm_bh(s, B, H, false, true, T, T, K, Qm, Km, Sm, scale, 0.f, ty, ty));
  quad::mask_kernel<Dt><<<quad::grid_for(rows, 1), quad::kThreads, 0, s>>>(sc, rows, T, -INFINITY);
  LAK_CUDA(cudaGetLastError(), "launch softmax quadratic mask");
  quad::softmax_kernel<Dt><<<quad::grid_for(rows, 1), quad::kThreads, 0, s>>>(sc, rows, T);
  LAK_CUDA(cudaGetLastError(), "launch softmax quadratic softmax");
  LAK_TRY(quad::gemm_bh(s, B, H, false, false, T, V, T, Sm, Vm, Om, 1.f, 0.f, ty, ty));
  if (!backward) return LAK_OK;

  const Mat dSm{dsc, T, T * T, H * T * T};
  const Mat dOm{reinterpret_cast<const void*>(p.do_), H * V, V, T * H * V};
  LAK_TRY(quad::gemm_bh(s, B, H, false, true, T, T, V, dOm, Vm, dSm, 1.f, 0.f, ty, ty));
  quad::softmax_bwd_kernel<Dt><<<quad::grid_for(rows, 1), quad::kThreads, 0, s>>>(sc, dsc, rows,
                                                                                  T);
  LAK_CUDA(cudaGetLastError(), "launch softmax quadratic softmax backward");
  if (p.dq) {
    const Mat dQm{reinterpret_cast<const void*>(p.dq), H * K, K, T * H * K};
    LAK_TRY(quad::gemm_bh(s, B, H, false, false, T, K, T, dSm, Km, dQm, scale, 0.f, ty, ty));
  }
  if (p.dk) {
    const Mat dKm{reinterpret_cast<const void*>(p.dk), H * K, K, T * H * K};
    LAK_TRY(quad::gemm_bh(s, B, H, true, false, T, K, T, dSm, Qm, dKm, scale, 0.f, ty, ty));
  }
  if (p.dv) {
    const Mat dVm{reinterpret_cast<const void*>(p.dv), H * V, V, T * H * V};
    LAK_TRY(quad::gemm_bh(s, B, H, true, false, T, V, T, Sm, dOm, dVm, 1.f, 0.f, ty, ty));
  }
  return LAK_OK;
}

int forward(const lak_op_params& p, cudaStream_t s) {
  return p.dtype == LAK_DTYPE_BF16 ? run<__nv_bfloat16>(p, false, s) : run<float>(p, false, s);
}

int backward(const lak_op_params& p, cudaStream_t s) {
  return p.dtype == LAK_DTYPE_BF16 ? run<__nv_bfloat16>(p, true, s) : run<float>(p, true, s);
}

}  // namespace

extern const OpEntry kSoftmaxQuadratic = {LAK_VARIANT_SOFTMAX, LAK_IMPL_QUADRATIC, check,
                                          workspace, forward, backward};

}  // namespace lak
