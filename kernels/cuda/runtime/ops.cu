// Op entry points: find the (variant, impl) in the op table, validate, run.
#include <cmath>

#include "op_registry.h"
#include "runtime.h"

namespace {

const char* variant_name(int64_t v) {
  switch (v) {
    case LAK_VARIANT_LA: return "la";
    case LAK_VARIANT_GLA: return "gla";
    case LAK_VARIANT_DELTANET: return "deltanet";
    case LAK_VARIANT_RMT: return "rmt";
    case LAK_VARIANT_SOFTMAX: return "softmax";
    default: return nullptr;
  }
}

const char* impl_name(int64_t i) {
  switch (i) {
    case LAK_IMPL_CHUNK: return "chunk";
    case LAK_IMPL_RECURRENT: return "recurrent";
    case LAK_IMPL_QUADRATIC: return "quadratic";
    case LAK_IMPL_FLASH: return "flash";
    default: return nullptr;
  }
}

// What every op requires of its request (docs/ops.md's contract), so each op's own check only
// adds what its kernels support.
int check_contract(const lak_op_params& p, const char* variant) {
  if (p.dtype != LAK_DTYPE_F32 && p.dtype != LAK_DTYPE_BF16 && p.dtype != LAK_DTYPE_F64) {
    return lak::fail(LAK_ERR_INVALID,
                     "field 'dtype' is %lld; expected 0 (f32), 1 (bf16) or 2 (f64)",
                     static_cast<long long>(p.dtype));
  }
  if (p.dtype == LAK_DTYPE_F64 && p.impl != LAK_IMPL_RECURRENT) {
    return lak::fail(LAK_ERR_UNSUPPORTED,
                     "dtype f64 is the fp64 oracle of the recurrent impl only, not %s/%s", variant,
                     impl_name(p.impl));
  }
  const bool rmt = p.variant == LAK_VARIANT_RMT;
  const struct {
    const char* name;
    int64_t value;
  } dims[] = {{"B", p.B}, {"T", p.T}, {"H", p.H}, {"K", p.K}, {"V", p.V}};
  for (const auto& d : dims) {
    if (d.value < 1) {
      return lak::fail(LAK_ERR_INVALID, "field '%s' is %lld; must be >= 1", d.name,
                       static_cast<long long>(d.value));
    }
  }
  if (rmt && (p.M < 1 || p.segment_len < 1)) {
    return lak::fail(LAK_ERR_INVALID, "rmt needs M >= 1 and segment_len >= 1; got M=%lld segment_len=%lld",
                     static_cast<long long>(p.M), static_cast<long long>(p.segment_len));
  }
  if (!rmt && p.M != 0) {
    return lak::fail(LAK_ERR_INVALID, "field 'M' is %lld; must be 0 for %s",
                     static_cast<long long>(p.M), variant);
  }
  if (!std::isfinite(p.scale)) return lak::fail(LAK_ERR_INVALID, "field 'scale' is not finite");
  // Inputs and gradients that only some variants have must be absent elsewhere.
  const int64_t v = p.variant;
  const bool state = v == LAK_VARIANT_LA || v == LAK_VARIANT_GLA || v == LAK_VARIANT_DELTANET;
  const struct {
    const char* name;
    uint64_t ptr;
    bool belongs;
  } owned[] = {
      {"g", p.g, v == LAK_VARIANT_GLA},          {"dg", p.dg, v == LAK_VARIANT_GLA},
      {"beta", p.beta, v == LAK_VARIANT_DELTANET}, {"dbeta", p.dbeta, v == LAK_VARIANT_DELTANET},
      {"mem", p.mem, rmt},                       {"dmem", p.dmem, rmt},
      {"z0", p.z0, v == LAK_VARIANT_LA},         {"dz0", p.dz0, v == LAK_VARIANT_LA},
      {"final_z", p.final_z, v == LAK_VARIANT_LA}, {"h0", p.h0, state},
      {"dh0", p.dh0, state},
  };
  for (const auto& x : owned) {
    if (!x.belongs && x.ptr != 0) {
      return lak::fail(LAK_ERR_INVALID, "field '%s' must be 0 (absent) for %s", x.name, variant);
    }
  }
  return LAK_OK;
}

// The op for p, or nullptr with the last error set and *status the reason.
const lak::OpEntry* lookup(const lak_op_params* p, const char* fn, int* status) {
  if (p == nullptr) {
    *status = lak::fail(LAK_ERR_INVALID, "%s: params pointer is null", fn);
    return nullptr;
  }
  const char* v = variant_name(p->variant);
  const char* i = impl_name(p->impl);
  if (v == nullptr) {
    *status = lak::fail(LAK_ERR_INVALID, "field 'variant' is %lld; expected 0..4",
                        static_cast<long long>(p->variant));
    return nullptr;
  }
  if (i == nullptr) {
    *status = lak::fail(LAK_ERR_INVALID, "field 'impl' is %lld; expected 0..3",
                        static_cast<long long>(p->impl));
    return nullptr;
  }
  const lak::OpEntry* e = lak::find_op(p->variant, p->impl);
  if (e == nullptr) {
    *status = lak::fail(LAK_ERR_UNSUPPORTED, "%s/%s is not implemented in liblak yet", v, i);
    return nullptr;
  }
  *status = check_contract(*p, v);
  return *status == LAK_OK ? e : nullptr;
}

int check_workspace(const lak::OpEntry& e, const lak_op_params& p) {
  const size_t need = e.workspace(p);
  if (need == 0) return LAK_OK;
  if (p.workspace == 0 || p.workspace_bytes < need) {
    return lak::fail(LAK_ERR_INVALID,
                     "field 'workspace' must point to at least %zu bytes (lak_op_workspace); got "
                     "pointer 0x%llx with workspace_bytes=%llu",
                     need, static_cast<unsigned long long>(p.workspace),
                     static_cast<unsigned long long>(p.workspace_bytes));
  }
  if (p.workspace % 16 != 0) return lak::fail(LAK_ERR_INVALID, "field 'workspace' is not 16-byte aligned");
  return LAK_OK;
}

}  // namespace

extern "C" LAK_API int lak_op_workspace(const lak_op_params* p, size_t* bytes) {
  LAK_GUARD_BEGIN
  if (bytes == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_op_workspace: 'bytes' is null");
  *bytes = 0;
  int st = LAK_OK;
  const lak::OpEntry* e = lookup(p, "lak_op_workspace", &st);
  if (e == nullptr) return st;
  LAK_TRY(e->check(*p, false));
  *bytes = e->workspace(*p);
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_op_forward(const lak_op_params* p) {
  LAK_GUARD_BEGIN
  int st = LAK_OK;
  const lak::OpEntry* e = lookup(p, "lak_op_forward", &st);
  if (e == nullptr) return st;
  LAK_TRY(e->check(*p, false));
  LAK_TRY(check_workspace(*e, *p));
  LAK_TRY(lak::enter());
  return e->forward(*p, lak::current_stream());
  LAK_GUARD_END
}

extern "C" LAK_API int lak_op_backward(const lak_op_params* p) {
  LAK_GUARD_BEGIN
  int st = LAK_OK;
  const lak::OpEntry* e = lookup(p, "lak_op_backward", &st);
  if (e == nullptr) return st;
  if (e->backward == nullptr) {
    return lak::fail(LAK_ERR_UNSUPPORTED, "backward of %s/%s is not implemented in liblak yet",
                     variant_name(p->variant), impl_name(p->impl));
  }
  LAK_TRY(e->check(*p, true));
  LAK_TRY(check_workspace(*e, *p));
  LAK_TRY(lak::enter());
  return e->backward(*p, lak::current_stream());
  LAK_GUARD_END
}
