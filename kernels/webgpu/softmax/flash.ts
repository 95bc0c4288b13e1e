/**
 * Causal softmax attention forward, tiled online softmax (docs/ops.md softmax `chunk`): rmt's
 * segment kernel (rmt/segment.wgsl) with one segment of all T tokens and no memory rows; one
 * query row per invocation, key/value tiles in workgroup memory; or, with the knob `softmax.tok` =
 * 2, rmt/tokens2.wgsl (4×4 register tiles, FlashAttention-2 style).
 */
import type { KernelBuilder } from "../kernel.ts";
import { buildSegments, planSegments, type RmtPlan } from "../rmt/rmt_fwd.ts";

export const softmaxFlash: KernelBuilder<RmtPlan> = {
  variant: "softmax",
  impl: "flash",
  default: true,
  modes: ["fwd"],
  dtypes: ["f32", "f16", "bf16"],
  description: "causal softmax forward: tiled online softmax, one query row per invocation",
  plan: planSegments,
  build: (device, plan, req) => buildSegments(device, plan, req),
};
