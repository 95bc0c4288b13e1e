// deltanet chunked forward and backward: the launchers' interface to the op table.
#pragma once

#include <cuda_runtime.h>

#include "../include/lak.h"

namespace lak {
namespace deltanet {

// Checks every field a deltanet/chunk request reads (backward: the backward's fields too).
int chunk_check(const lak_op_params& p, bool backward);
// Workspace bytes covering both directions, for a checked request.
size_t chunk_workspace(const lak_op_params& p);
int chunk_fwd(const lak_op_params& p, cudaStream_t stream);
int chunk_bwd(const lak_op_params& p, cudaStream_t stream);
// Per storage dtype (chunk_f32.cu, chunk_bf16.cu), for a checked request.
int chunk_fwd_f32(const lak_op_params& p, cudaStream_t stream);
int chunk_bwd_f32(const lak_op_params& p, cudaStream_t stream);
int chunk_fwd_bf16(const lak_op_params& p, cudaStream_t stream);
int chunk_bwd_bf16(const lak_op_params& p, cudaStream_t stream);

}  // namespace deltanet
}  // namespace lak
