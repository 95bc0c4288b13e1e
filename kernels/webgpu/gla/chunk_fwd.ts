/**
 * gla forward, chunked, in the three passes of la (see la/chunk_fwd.ts) with decays:
 *   1. chunk_state.wgsl — per (chunk, head): ΔS = (K ⊙ exp(Γ − G))ᵀV and Γ into ws;
 *   2. chunk_scan.wgsl  — per head: S_n = diag(exp(Γ_n)) S_{n−1} + ΔS_n from h0;
 *   3. chunk_out.wgsl   — per (chunk, head): O = scale·[(Q ⊙ exp(G)) S_prev + A V].
 * The math is docs/ops.md's chunked form (kernels/reference/gla/chunk.ts).
 */
import type { KernelBuilder } from "../kernel.ts";
import { buildThreePass, type LaChunkPlan, planChunk } from "../la/chunk_fwd.ts";

const BIND = {
  params: 0,
  q: 1,
  k: 2,
  v: 3,
  o: 4,
  ws: 5,
  h0: 6,
  g: 7,
  final_state: 8,
} as const;

export const glaChunk: KernelBuilder<LaChunkPlan> = {
  variant: "gla",
  impl: "chunk",
  default: true,
  modes: ["fwd"],
  dtypes: ["f32", "f16", "bf16"],
  description: "chunked gla forward in 3 WGSL passes: decayed chunk states, decayed prefix, outputs",
  plan: (req, dtype, limits) => planChunk(req, dtype, limits, true),
  build: (device, plan, req, has) =>
    buildThreePass(device, plan, req, has, import.meta.url, BIND, ["q", "k", "v", "g", "o"], [
      "ws",
      "h0",
      "final_state",
    ]),
};
