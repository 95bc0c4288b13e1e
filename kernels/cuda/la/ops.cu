// la's entries in the op table.
#include "../runtime/op_registry.h"
#include "../runtime/runtime.h"
#include "chunk_fwd.h"

namespace lak {
namespace {

int check_chunk(const lak_op_params& p, bool backward) {
  if (backward) return fail(LAK_ERR_UNSUPPORTED, "backward of la/chunk is not implemented yet");
  return la::chunk_fwd_check(p);
}

}  // namespace

extern const OpEntry kLaChunk = {LAK_VARIANT_LA, LAK_IMPL_CHUNK, check_chunk,
                                 la::chunk_fwd_workspace, la::chunk_fwd, nullptr};

}  // namespace lak
