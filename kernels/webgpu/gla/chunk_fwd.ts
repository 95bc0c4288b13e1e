/**
 * gla, chunked: the forward in the three passes of la (see la/chunk_fwd.ts) with decays
 *   1. chunk_state.wgsl — per (chunk, head): ΔS = (K ⊙ exp(Γ − G))ᵀV and Γ into ws;
 *   2. chunk_scan.wgsl  — per head: S_n = diag(exp(Γ_n)) S_{n−1} + ΔS_n from h0;
 *   3. chunk_out.wgsl   — per (chunk, head): O = scale·[(Q ⊙ exp(G)) S_prev + A V];
 * and the backward in three more: bwd_local (each chunk's scale·(Q⊙exp(G))ᵀdO), bwd_scan (the
 * decayed suffix giving dS after each chunk, and dh0), bwd_grad (dq, dk, dv, dg per chunk).
 * The math is docs/ops.md's chunked form (kernels/reference/gla/chunk.ts). Mode "fwd" takes the
 * segmented forward of seg_fwd.ts instead, unless its tiles do not fit the device (32 KiB of
 * workgroup memory at chunk_size = K = V = 64, lavapipe), where the three passes still do.
 * fwdbwd takes it too (`gla.fwd_seg`, planFwdSeg in la/chunk_fwd.ts): seg_out's STATES then
 * leaves every chunk's starting S and Γ in ws for the backward; where the segmented tiles do not
 * fit, the three passes. Measured on an H100 (B1 H8 K=V=64, T=1M bf16, prof.ts hot medians,
 * session 6): fwdbwd 293.1 ms with the three passes (state 36.3, scan 49.5, out 71.3), 181.7 ms
 * segmented (state 8.1, scan 0.41, out 36.9).
 */
import { Unsupported } from "../../../bench/backends/backend.ts";
import type { KernelBuilder } from "../kernel.ts";
import type { OpRequest } from "../../../bench/ops.ts";
import { buildGlaSeg, type GlaSegPlan, planGlaSeg } from "./seg_fwd.ts";
import {
  addThreePassBackward,
  buildThreePass,
  type LaChunkPlan,
  planChunk,
  planFwdSeg,
} from "../la/chunk_fwd.ts";

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
  do: 9,
  dq: 10,
  dk: 11,
  dv: 12,
  dg: 13,
  dh0: 14,
  wsd: 15,
  wsg: 16,
} as const;

/** fwdbwd with `gla.fwd_seg` = 2: the per-chunk plan (workspaces, backward) and the segmented
 * forward that replaces its three forward passes. */
export interface GlaFwdSegPlan extends LaChunkPlan {
  fwdSeg: GlaSegPlan;
}

export const glaChunk: KernelBuilder<LaChunkPlan | GlaSegPlan | GlaFwdSegPlan> = {
  variant: "gla",
  impl: "chunk",
  default: true,
  modes: ["fwd", "fwdbwd"],
  dtypes: ["f32", "f16", "bf16"],
  description:
    "chunked gla: fwd in 3 WGSL passes over segments of chunks (segment states, prefix over " +
    "segments, outputs walking each segment); fwdbwd: per-chunk states, prefix, outputs, " +
    "backward in 3 more",
  plan(req: OpRequest, dtype, limits) {
    if (req.mode === "fwd") {
      try {
        return planGlaSeg(req, dtype, limits);
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
      }
    }
    const plan = planChunk(req, dtype, limits, true);
    if (req.mode === "fwdbwd") {
      plan.workspace.wsd = plan.workspace.ws;
      plan.workspace.wsg = 4 * plan.BH * plan.NC * plan.C * req.shape.K;
    }
    // ws stays the per-chunk one above (the segmented plan's is per segment).
    return planFwdSeg("gla", req.mode, plan, () => planGlaSeg(req, dtype, limits));
  },
  async build(device, plan, req, has) {
    if ("seg" in plan) return await buildGlaSeg(device, plan, req, has, BIND);
    const fwd = "fwdSeg" in plan
      ? await buildGlaSeg(device, plan.fwdSeg, req, has, BIND, true)
      : await buildThreePass(device, plan, req, has, import.meta.url, BIND, [
        "q",
        "k",
        "v",
        "g",
        "o",
      ], ["ws", "h0", "final_state"]);
    if (req.mode === "fwd") return fwd;
    return await addThreePassBackward(
      device,
      fwd,
      plan,
      req,
      import.meta.url,
      BIND,
      [
        "q",
        "k",
        "v",
        "g",
        "do",
        "dq",
        "dk",
        "dv",
        "dg",
      ],
      ["ws", "wsd", "wsg", "dh0", "final_state"],
      req.shape.K * req.shape.V,
    );
  },
};
