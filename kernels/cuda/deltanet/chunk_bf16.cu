// deltanet chunked forward / backward, bf16 storage (see chunk_launch.cuh).
#include "chunk_launch.cuh"

namespace lak {
namespace deltanet {

int chunk_fwd_bf16(const lak_op_params& p, cudaStream_t stream) {
  return forward<__nv_bfloat16>(p, stream);
}

int chunk_bwd_bf16(const lak_op_params& p, cudaStream_t stream) {
  return backward<__nv_bfloat16>(p, stream);
}

}  // namespace deltanet
}  // namespace lak
