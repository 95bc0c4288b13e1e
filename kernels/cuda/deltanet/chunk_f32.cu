// deltanet chunked forward / backward, f32 storage (see chunk_launch.cuh).
#include "chunk_launch.cuh"

namespace lak {
namespace deltanet {

int chunk_fwd_f32(const lak_op_params& p, cudaStream_t stream) {
  return forward<float>(p, stream);
}

int chunk_bwd_f32(const lak_op_params& p, cudaStream_t stream) {
  return backward<float>(p, stream);
}

}  // namespace deltanet
}  // namespace lak
