// softmax's entries in the op table: flash (tiled online softmax, FlashAttention-2 algorithm).
#include <cmath>

#include "../runtime/op_registry.h"
#include "../runtime/runtime.h"
#include "flash.h"

namespace lak {
namespace {

constexpr size_t kAlign = 256;
size_t up(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// Workspace: lse [B·H][T] f32, di [B·H][T] f32, then (bf16 only) the fp32 dq accumulator.
struct FlashWs {
  size_t lse, di, dq, total;
};
FlashWs flash_ws(const lak_op_params& p) {
  FlashWs w;
  const size_t rows = static_cast<size_t>(p.B * p.H) * static_cast<size_t>(p.T);
  w.lse = 0;
  w.di = up(rows * 4);
  w.dq = w.di + up(rows * 4);
  w.total = w.dq + (p.dtype == LAK_DTYPE_BF16 ? up(rows * static_cast<size_t>(p.K) * 4) : 0);
  return w;
}

int check_flash(const lak_op_params& p, bool backward) {
  if (p.K != p.V || (p.K != 64 && p.K != 128)) {
    return fail(LAK_ERR_UNSUPPORTED, "softmax flash supports K = V in {64, 128}; got K=%lld V=%lld",
                static_cast<long long>(p.K), static_cast<long long>(p.V));
  }
  const double elems = static_cast<double>(p.B) * p.T * p.H * p.K;
  if (elems > 4.0e18) return fail(LAK_ERR_INVALID, "B*T*H*K = %.3g is too large", elems);
  const struct {
    const char* name;
    uint64_t ptr;
    bool required;
  } ptrs[] = {
      {"q", p.q, true},           {"k", p.k, true},          {"v", p.v, true},
      {"o", p.o, !backward},      {"do_", p.do_, backward},  {"dq", p.dq, backward},
      {"dk", p.dk, backward},     {"dv", p.dv, backward},
  };
  for (const auto& x : ptrs) {
    if (x.required && x.ptr == 0) {
      return fail(LAK_ERR_INVALID, "field '%s' is a null pointer; softmax %s needs it", x.name,
                  backward ? "backward" : "forward");
    }
    if (x.ptr % 16 != 0) {
      return fail(LAK_ERR_INVALID, "field '%s' (0x%llx) is not 16-byte aligned", x.name,
                  static_cast<unsigned long long>(x.ptr));
    }
  }
  attn::Problem pr;
  pr.B = p.B;
  pr.T = p.T;
  pr.H = p.H;
  pr.D = p.K;
  pr.L = p.T;
  pr.nseg = 1;
  return attn::check(pr);
}

size_t flash_workspace(const lak_op_params& p) { return flash_ws(p).total; }

attn::Problem problem(const lak_op_params& p) {
  attn::Problem pr;
  pr.bf16 = p.dtype == LAK_DTYPE_BF16;
  pr.q = reinterpret_cast<const void*>(p.q);
  pr.k = reinterpret_cast<const void*>(p.k);
  pr.v = reinterpret_cast<const void*>(p.v);
  pr.o = reinterpret_cast<void*>(p.o);
  const FlashWs w = flash_ws(p);
  char* ws = reinterpret_cast<char*>(p.workspace);
  pr.lse = reinterpret_cast<float*>(ws + w.lse);
  pr.di = reinterpret_cast<float*>(ws + w.di);
  pr.B = p.B;
  pr.T = p.T;
  pr.H = p.H;
  pr.D = p.K;
  pr.M = 0;
  pr.L = p.T;
  pr.nseg = 1;
  pr.scale = static_cast<float>(p.scale);
  return pr;
}

int workspace_ok(const lak_op_params& p) {
  const size_t need = flash_ws(p).total;
  if (p.workspace == 0 || p.workspace_bytes < need) {
    return fail(LAK_ERR_INVALID, "field 'workspace' must hold %zu bytes (got %llu at 0x%llx)", need,
                static_cast<unsigned long long>(p.workspace_bytes),
                static_cast<unsigned long long>(p.workspace));
  }
  return LAK_OK;
}

int flash_forward(const lak_op_params& p, cudaStream_t stream) {
  LAK_TRY(workspace_ok(p));
  return attn::forward(problem(p), stream);
}

// Recomputes the forward (o where set, lse, di = rowsum(do ⊙ o)) into the workspace, then the
// key-tile-outer backward; dq accumulates atomically in fp32 (bf16: in the workspace, then
// rounded once).
int flash_backward(const lak_op_params& p, cudaStream_t stream) {
  LAK_TRY(workspace_ok(p));
  attn::Problem pr = problem(p);
  pr.do_ = reinterpret_cast<const void*>(p.do_);
  LAK_TRY(attn::forward(pr, stream));
  const FlashWs w = flash_ws(p);
  const int64_t n = p.B * p.T * p.H * p.K;
  pr.dq_acc = pr.bf16 ? reinterpret_cast<float*>(reinterpret_cast<char*>(p.workspace) + w.dq)
                      : reinterpret_cast<float*>(p.dq);
  LAK_CUDA(cudaMemsetAsync(pr.dq_acc, 0, static_cast<size_t>(n) * 4, stream), "cudaMemsetAsync(dq)");
  pr.dk = reinterpret_cast<void*>(p.dk);
  pr.dv = reinterpret_cast<void*>(p.dv);
  pr.dkv_f32 = !pr.bf16;
  LAK_TRY(attn::backward(pr, stream));
  if (pr.bf16) LAK_TRY(attn::store_f32(pr.dq_acc, reinterpret_cast<void*>(p.dq), n, true, stream));
  return LAK_OK;
}

}  // namespace

extern const OpEntry kSoftmaxFlash = {LAK_VARIANT_SOFTMAX, LAK_IMPL_FLASH, check_flash,
                                      flash_workspace, flash_forward, flash_backward};

}  // namespace lak
