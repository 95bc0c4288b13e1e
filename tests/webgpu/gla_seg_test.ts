/**
 * gla's segmented forward (mode fwd, kernels/webgpu/gla/seg_fwd.ts) against the fp64 oracle:
 * several segments with cps not dividing the chunk count and a partial last chunk, K, V and C
 * not multiples of 4, one segment, strong and zero gates, with and without h0, in every storage
 * dtype. Same adapter policy as the other WebGPU tests; WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe } from "node:test";
import assert from "node:assert/strict";
import { tunedForwardTests } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import {
  defaultParams,
  type InputName,
  type Inputs,
  inputShape,
  type Shape,
} from "../../bench/ops.ts";
import { numel, tensor } from "../../bench/tensor.ts";
import { mulberry32 as rng } from "../../bench/stats.ts";
import { planGlaSeg } from "../../kernels/webgpu/gla/seg_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu gla segmented forward tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));

interface Case {
  name: string;
  shape: Shape;
  chunk: number;
  /** LAB_WEBGPU_TUNE overrides (gla.cps, gla.kt, gla.ct). */
  tune: Record<string, number>;
  gates: [number, number];
  h0: boolean;
}

const CASES: Case[] = [
  {
    name: "19 chunks in segments of 4, partial last chunk",
    shape: { B: 1, T: 150, H: 2, K: 16, V: 12, M: 0 },
    chunk: 8,
    tune: { "gla.cps": 4, "gla.ct": 12 },
    gates: [-0.6, 0],
    h0: true,
  },
  {
    name: "odd K, V, C; B·H = 3; one-key slices",
    shape: { B: 3, T: 45, H: 1, K: 7, V: 5, M: 0 },
    chunk: 7,
    tune: { "gla.cps": 2, "gla.kt": 4 },
    gates: [-0.6, 0],
    h0: true,
  },
  {
    name: "strong gates near logsigmoid(-10)",
    shape: { B: 1, T: 70, H: 2, K: 16, V: 16, M: 0 },
    chunk: 16,
    tune: { "gla.cps": 2 },
    gates: [-10, -9],
    h0: true,
  },
  {
    name: "zero gates (plain linear attention), no h0",
    shape: { B: 2, T: 40, H: 2, K: 8, V: 8, M: 0 },
    chunk: 16,
    tune: { "gla.cps": 1 },
    gates: [0, 0],
    h0: false,
  },
  {
    name: "K = V = 64, chunk 32, one segment",
    shape: { B: 1, T: 100, H: 1, K: 64, V: 64, M: 0 },
    chunk: 32,
    tune: { "gla.cps": 8 },
    gates: [-0.6, 0],
    h0: true,
  },
];

function makeInputs(c: Case, seed: number): Inputs {
  const r = rng(seed);
  const inputs: Inputs = {};
  const names: InputName[] = ["q", "k", "v", "g", ...(c.h0 ? ["h0" as const] : [])];
  for (const name of names) {
    const shape = inputShape(name, c.shape);
    const [lo, hi] = name === "g" ? c.gates : [-1, 1];
    const d = new Float32Array(numel(shape));
    for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * r();
    inputs[name] = tensor("f32", shape, d);
  }
  return inputs;
}

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu gla segmented forward vs fp64 oracle", () => {
    tunedForwardTests(be, "gla", CASES, {
      seed: SEED,
      request: (c) => ({
        variant: "gla",
        mode: "fwd",
        params: { ...defaultParams("gla", c.shape.K), chunk_size: c.chunk },
        shape: c.shape,
      }),
      inputs: makeInputs,
      // The case must take the segmented path, with more than one segment where tuned so.
      checkPlan: (c, req, dtype) => {
        const plan = planGlaSeg(req, dtype, be.info().limits as DeviceLimits);
        assert.equal(plan.cps, Math.min(c.tune["gla.cps"], plan.NC));
      },
    });
  });
}
