// Op entry points: dispatch on lak_op_params.variant.
#include <new>

#include "../la/chunk_fwd.h"
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

// LAK_OK when the variant is la (the only one implemented); a status otherwise.
int check_variant(const lak_op_params* p, const char* fn) {
  if (p == nullptr) return lak::fail(LAK_ERR_INVALID, "%s: params pointer is null", fn);
  const char* name = variant_name(p->variant);
  if (name == nullptr) {
    return lak::fail(LAK_ERR_INVALID, "field 'variant' is %lld; expected 0..4",
                     static_cast<long long>(p->variant));
  }
  if (p->variant != LAK_VARIANT_LA) {
    return lak::fail(LAK_ERR_UNSUPPORTED, "variant %s is not implemented in liblak yet", name);
  }
  return LAK_OK;
}

}  // namespace

extern "C" LAK_API int lak_op_workspace(const lak_op_params* p, size_t* bytes) {
  LAK_GUARD_BEGIN
  if (bytes == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_op_workspace: 'bytes' is null");
  *bytes = 0;
  LAK_TRY(check_variant(p, "lak_op_workspace"));
  LAK_TRY(lak::la::chunk_fwd_check(*p));
  *bytes = lak::la::chunk_fwd_workspace(*p);
  return LAK_OK;
  LAK_GUARD_END
}

extern "C" LAK_API int lak_op_forward(const lak_op_params* p) {
  LAK_GUARD_BEGIN
  LAK_TRY(check_variant(p, "lak_op_forward"));
  LAK_TRY(lak::la::chunk_fwd_check(*p));
  LAK_TRY(lak::la::chunk_fwd_check_workspace(*p));
  LAK_TRY(lak::enter());
  return lak::la::chunk_fwd(*p, lak::current_stream());
  LAK_GUARD_END
}

extern "C" LAK_API int lak_op_backward(const lak_op_params* p) {
  LAK_GUARD_BEGIN
  if (p == nullptr) return lak::fail(LAK_ERR_INVALID, "lak_op_backward: params pointer is null");
  const char* name = variant_name(p->variant);
  return lak::fail(LAK_ERR_UNSUPPORTED, "backward of %s is not implemented in liblak yet",
                   name != nullptr ? name : "an unknown variant");
  LAK_GUARD_END
}
