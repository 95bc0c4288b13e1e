// gla's entries in the op table.
#include "../runtime/op_registry.h"
#include "chunk.h"

namespace lak {

extern const OpEntry kGlaChunk = {LAK_VARIANT_GLA, LAK_IMPL_CHUNK, gla::chunk_check,
                                  gla::chunk_workspace, gla::chunk_fwd, gla::chunk_bwd};

}  // namespace lak
