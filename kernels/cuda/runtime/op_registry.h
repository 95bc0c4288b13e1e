// The op table: every (variant, impl) the library implements, and how the C entry points
// reach it. Each variant folder defines its entries in its own ops.cu; runtime/op_table.cu
// lists them. Adding an op = one entry there plus its folder; nothing else changes.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "../include/lak.h"

namespace lak {

struct OpEntry {
  int64_t variant;  // LAK_VARIANT_*
  int64_t impl;     // LAK_IMPL_*
  // Validates every field the direction reads (backward: false = forward). LAK_OK, or
  // LAK_ERR_INVALID / LAK_ERR_UNSUPPORTED with a message naming the field.
  int (*check)(const lak_op_params& p, bool backward);
  // Scratch bytes covering both directions, for a checked request.
  size_t (*workspace)(const lak_op_params& p);
  int (*forward)(const lak_op_params& p, cudaStream_t stream);
  // nullptr when the op has no backward yet. Reads the inputs and do_ only (it recomputes
  // whatever the forward would have saved) and writes every gradient whose pointer is set.
  int (*backward)(const lak_op_params& p, cudaStream_t stream);
};

// nullptr when no such op exists.
const OpEntry* find_op(int64_t variant, int64_t impl);

}  // namespace lak
