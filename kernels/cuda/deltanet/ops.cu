// deltanet's entries in the op table.
#include "../runtime/op_registry.h"
#include "../runtime/runtime.h"
#include "chunk.h"

namespace lak {

extern const OpEntry kDeltanetChunk = {LAK_VARIANT_DELTANET, LAK_IMPL_CHUNK,
                                       deltanet::chunk_check, deltanet::chunk_workspace,
                                       deltanet::chunk_fwd, deltanet::chunk_bwd};

}  // namespace lak
