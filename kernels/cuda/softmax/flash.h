// The tiled online-softmax attention core (FlashAttention-2 algorithm) shared by softmax/flash
// and rmt/chunk: causal attention of each segment's tokens over [memory rows; the segment's
// tokens]. softmax is one segment of T tokens and no memory rows (M = 0).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../include/lak.h"

namespace lak {
namespace attn {

// One request of the core. Token tensors are [B,T,H,D] at the storage dtype; per-(b,h) fp32
// side arrays are indexed bh = b·H + h. Segment s holds tokens [s·L, min((s+1)·L, T)).
struct Problem {
  bool bf16 = false;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  // rmt: [B·H][nseg+1][M][D] fp32 memories; segment s attends to mems[bh][s]. Null when M = 0.
  const float* mems = nullptr;
  void* o = nullptr;        // forward output (storage dtype); may be null
  float* lse = nullptr;     // [B·H][T]: log2-domain logsumexp of scale·log2(e)·q·k
  const void* do_ = nullptr;  // forward: when set, also write di = rowsum(do ⊙ o)
  float* di = nullptr;      // [B·H][T]
  float* dq_acc = nullptr;  // backward: [B,T,H,D] fp32, zeroed by the caller, atomically added
  void* dk = nullptr;       // backward: [B,T,H,D], fp32 when dkv_f32 else storage dtype
  void* dv = nullptr;
  bool dkv_f32 = false;
  float* dmemtok = nullptr;  // backward, M > 0: [B·H][nseg][M][D] fp32, dK̃ + dṼ of memory rows
  int64_t B = 0, T = 0, H = 0, D = 0, M = 0, L = 0, nseg = 0;
  float scale = 0.f;
};

// Shared-memory and size limits; LAK_OK or a status with a message.
int check(const Problem& p);
int forward(const Problem& p, cudaStream_t stream);
int backward(const Problem& p, cudaStream_t stream);
// dst[i] = src[i] at the storage dtype (bf16 or fp32), n elements.
int store_f32(const float* src, void* dst, int64_t n, bool bf16, cudaStream_t stream);

}  // namespace attn
}  // namespace lak
