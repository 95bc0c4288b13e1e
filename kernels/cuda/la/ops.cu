// la's entries in the op table.
#include "../runtime/op_registry.h"
#include "../runtime/runtime.h"
#include "chunk_fwd.h"

namespace lak {
namespace {

int check_chunk(const lak_op_params& p, bool backward) {
  return backward ? la::chunk_bwd_check(p) : la::chunk_fwd_check(p);
}

}  // namespace

extern const OpEntry kLaChunk = {LAK_VARIANT_LA, LAK_IMPL_CHUNK, check_chunk, la::chunk_workspace,
                                 la::chunk_fwd, la::chunk_bwd};

}  // namespace lak
