// gla chunked forward and backward: the launcher's interface to the runtime's op dispatch.
#pragma once

#include <cuda_runtime.h>

#include "../include/lak.h"

namespace lak {
namespace gla {

// Checks every field a gla forward (backward = false) or backward request reads.
int chunk_check(const lak_op_params& p, bool backward);
// Workspace bytes for a checked request: the forward's, and when do_ is set the larger of the
// forward's and the backward's.
size_t chunk_workspace(const lak_op_params& p);
// Forward: o and final_state.
int chunk_fwd(const lak_op_params& p, cudaStream_t stream);
// Backward: recomputes the chunk states (writing final_state too, not o), then dq, dk, dv, dg,
// dh0 for every pointer that is set.
int chunk_bwd(const lak_op_params& p, cudaStream_t stream);

}  // namespace gla
}  // namespace lak
