/**
 * deltanet's segmented forward (mode fwd, kernels/webgpu/deltanet/seg_fwd.ts) against the fp64
 * oracle: several segments with cps not dividing the chunk count and a partial last chunk,
 * column tiles of G = [M | B] straddling M and B, several value-column tiles, M streamed in
 * slices, K ≠ V, K, V, C not multiples of 4, qk_l2norm on and off, with and without h0, in every
 * storage dtype. Chunk sizes stay small so every case fits lavapipe's 32 KiB of workgroup
 * memory. Same adapter policy as the other WebGPU tests; WEBGPU_TEST_SEED=<n> replays.
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
import { planDeltaSeg } from "../../kernels/webgpu/deltanet/seg_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu deltanet segmented forward tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));

interface Case {
  name: string;
  shape: Shape;
  chunk: number;
  /** LAB_WEBGPU_TUNE overrides (deltanet.cps, .sum_cols, .out_cols, .scan_cols, .scan_kt). */
  tune: Record<string, number>;
  l2norm: boolean;
  h0: boolean;
}

const CASES: Case[] = [
  {
    name: "19 chunks in segments of 4, partial last chunk, narrow tiles",
    shape: { B: 1, T: 150, H: 2, K: 16, V: 12, M: 0 },
    chunk: 8,
    tune: {
      "deltanet.cps": 4,
      "deltanet.sum_cols": 12,
      "deltanet.out_cols": 8,
      "deltanet.scan_cols": 4,
      "deltanet.scan_kt": 4,
    },
    l2norm: true,
    h0: true,
  },
  {
    name: "no l2 norm, no h0, K < V, odd chunk, B·H = 2",
    shape: { B: 2, T: 45, H: 1, K: 8, V: 12, M: 0 },
    chunk: 7,
    tune: { "deltanet.cps": 2 },
    l2norm: false,
    h0: false,
  },
  {
    name: "odd K, V, C; B·H = 3",
    shape: { B: 3, T: 41, H: 1, K: 7, V: 5, M: 0 },
    chunk: 5,
    tune: { "deltanet.cps": 3, "deltanet.sum_cols": 8 },
    l2norm: true,
    h0: true,
  },
  {
    name: "no l2 norm, h0, one chunk per segment",
    shape: { B: 1, T: 40, H: 2, K: 12, V: 8, M: 0 },
    chunk: 16,
    tune: { "deltanet.cps": 1 },
    l2norm: false,
    h0: true,
  },
  {
    name: "K = 32, V = 64, chunk 32, default tiles, no h0",
    shape: { B: 1, T: 100, H: 1, K: 32, V: 64, M: 0 },
    chunk: 32,
    tune: { "deltanet.cps": 2 },
    l2norm: true,
    h0: false,
  },
  {
    name: "K = V = 64, chunk 32, one segment",
    shape: { B: 1, T: 90, H: 1, K: 64, V: 64, M: 0 },
    chunk: 32,
    tune: { "deltanet.cps": 8 },
    l2norm: true,
    h0: true,
  },
];

/**
 * Without the l2 norm, I − β k kᵀ has an eigenvalue 1 − β‖k‖², so q, k are kept short enough
 * (‖k‖² < 1) that the state neither explodes nor oscillates and fp32 stays comparable.
 */
function makeInputs(c: Case, seed: number): Inputs {
  const r = rng(seed);
  const inputs: Inputs = {};
  const names: InputName[] = ["q", "k", "v", "beta", ...(c.h0 ? ["h0" as const] : [])];
  const qk = c.l2norm ? 1 : 1.5 / Math.sqrt(c.shape.K);
  for (const name of names) {
    const shape = inputShape(name, c.shape);
    const [lo, hi] = name === "beta" ? [0, 1] : name === "q" || name === "k" ? [-qk, qk] : [-1, 1];
    const d = new Float32Array(numel(shape));
    for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * r();
    inputs[name] = tensor("f32", shape, d);
  }
  return inputs;
}

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu deltanet segmented forward vs fp64 oracle", () => {
    tunedForwardTests(be, "deltanet", CASES, {
      seed: SEED,
      request: (c) => ({
        variant: "deltanet",
        mode: "fwd",
        params: {
          ...defaultParams("deltanet", c.shape.K),
          chunk_size: c.chunk,
          qk_l2norm: c.l2norm,
        },
        shape: c.shape,
      }),
      inputs: makeInputs,
      // The case must take the segmented path with the segments it was tuned to.
      checkPlan: (c, req) => {
        const NC = Math.ceil(c.shape.T / c.chunk);
        const seg = planDeltaSeg(req, c.chunk, NC, be.info().limits as DeviceLimits);
        assert.equal(seg.cps, Math.min(c.tune["deltanet.cps"], NC));
      },
    });
  });
}
