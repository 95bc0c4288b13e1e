// rmt's memory chain: the sequential part of recurrent memory attention, one thread block per
// (b,h) walking the segments (forward: M_{s+1} = softmax(scale·M_s K̃ₛᵀ)Ṽₛ; backward: the
// reverse walk that carries dM through every update).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace lak {
namespace rmt {

struct Chain {
  bool bf16 = false;
  const void* k = nullptr;    // [B,T,H,D] storage dtype
  const void* v = nullptr;
  const void* mem = nullptr;  // [B,M,H,D] storage dtype
  float* mems = nullptr;      // [B·H][nseg+1][M][D] fp32: M_0 … M_S
  float* lse = nullptr;       // [B·H][nseg][M]: log2-domain lse of the updates
  float* final_state = nullptr;  // [B,M,H,D] fp32; may be null
  // backward
  const float* dmemtok = nullptr;  // [B·H][nseg][M][D]: the token attention's dK̃+dṼ of memory rows
  float* dk_acc = nullptr;         // [B,T,H,D] fp32, read-modify-write
  float* dv_acc = nullptr;
  void* dmem = nullptr;            // [B,M,H,D] storage dtype
  int64_t B = 0, T = 0, H = 0, D = 0, M = 0, L = 0, nseg = 0;
  float scale = 0.f;
};

int chain_check(const Chain& c);
int chain_forward(const Chain& c, cudaStream_t stream);
int chain_backward(const Chain& c, cudaStream_t stream);

}  // namespace rmt
}  // namespace lak
