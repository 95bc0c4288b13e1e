// la chunked forward (and the forward pass the backward reruns): the launcher's interface to
// the runtime's op dispatch and to chunk_bwd.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "../include/lak.h"

namespace lak {
namespace la {

// The chunk sizes C with a compiled instantiation of the kernels (a template argument each);
// chunk_size must be one of them (64 is the default, docs/ops.md).
constexpr bool chunk_size_ok(int64_t c) { return c == 16 || c == 32 || c == 64; }

// How the sequence is cut: n_chunks chunks of C = chunk_size tokens in nseg segments of cps
// chunks. The backward uses one chunk per segment, so the carries are every chunk's starting
// state.
struct Plan {
  int64_t n_chunks, cps, nseg;
};
Plan plan(const lak_op_params& p, bool backward);

// Backward workspace (floats, in this order): states [B*H][n_chunks][D*D + D] (S and z at
// each chunk's start), dstates [B*H][n_chunks][D*D + D] (∂ℓ/∂S, ∂ℓ/∂z after each chunk), row
// stats [B*H][n_chunks*C][2]. bwd_state_floats is the size of one of the first two.
size_t bwd_state_floats(const lak_op_params& p);

// LAK_ERR_UNSUPPORTED naming the chunk sizes there are (for a chunk_size that is not one).
int unsupported_chunk_size(const lak_op_params& p);
// Checks every field of a la forward request; LAK_OK or a status with a message.
int chunk_fwd_check(const lak_op_params& p);
// Workspace bytes for a checked request: the forward's, and when do_ is set the larger of the
// forward's and the backward's.
size_t chunk_workspace(const lak_op_params& p);
// Enqueues the three forward kernels; with backward, on the backward plan, also writing the
// row stats that the backward kernels read (needs do_).
int chunk_fwd_pass(const lak_op_params& p, cudaStream_t stream, bool backward);
int chunk_fwd(const lak_op_params& p, cudaStream_t stream);

// Backward: checks (forward fields, plus do_ and the gradient pointers), and the launch.
int chunk_bwd_check(const lak_op_params& p);
int chunk_bwd(const lak_op_params& p, cudaStream_t stream);

}  // namespace la
}  // namespace lak
