// la forward, chunked: the launcher's interface to the runtime's op dispatch.
#pragma once

#include <cuda_runtime.h>

#include "../include/lak.h"

namespace lak {
namespace la {

// Checks every field of a la forward request; LAK_OK or a status with a message.
int chunk_fwd_check(const lak_op_params& p);
// Workspace bytes for a checked request.
size_t chunk_fwd_workspace(const lak_op_params& p);
// Enqueues the three kernels on `stream` for a checked request.
int chunk_fwd(const lak_op_params& p, cudaStream_t stream);

}  // namespace la
}  // namespace lak
