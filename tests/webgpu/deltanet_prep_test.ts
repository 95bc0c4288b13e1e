/**
 * deltanet's two chunk preps and two segment sums under the segmented forward (mode fwd):
 * deltanet.prep = 1 (chunk_prep.wgsl) and 2 (chunk_prep2.wgsl: register tiles, blocked inverse),
 * deltanet.sum = 1 (seg_sum.wgsl) and 2 (seg_sum2.wgsl), against the fp64 oracle, in every
 * storage dtype: chunk sizes 16, 20, 32, 48 and 64 (one to four 16-row blocks of
 * the inverse, a partial last block), T not a multiple of the chunk, B·H > 1, K ≠ V, K, V not
 * multiples of 4, qk_l2norm on and off, with and without h0. Shapes stay within lavapipe's
 * 32 KiB of workgroup memory. Same adapter policy as the other WebGPU tests;
 * WEBGPU_TEST_SEED=<n> replays.
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
import { planPrep2 } from "../../kernels/webgpu/deltanet/chunk_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu deltanet prep v1/v2 tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));

interface Case {
  name: string;
  shape: Shape;
  chunk: number;
  tune: Record<string, number>;
  l2norm: boolean;
  h0: boolean;
}

const SHAPES: Omit<Case, "tune" | "name">[] = [
  { shape: { B: 1, T: 150, H: 2, K: 16, V: 16, M: 0 }, chunk: 16, l2norm: true, h0: true },
  { shape: { B: 2, T: 77, H: 1, K: 12, V: 10, M: 0 }, chunk: 20, l2norm: false, h0: true },
  { shape: { B: 1, T: 100, H: 2, K: 64, V: 64, M: 0 }, chunk: 32, l2norm: true, h0: false },
  { shape: { B: 1, T: 130, H: 3, K: 7, V: 9, M: 0 }, chunk: 48, l2norm: true, h0: true },
  { shape: { B: 2, T: 200, H: 1, K: 16, V: 24, M: 0 }, chunk: 64, l2norm: false, h0: false },
  { shape: { B: 1, T: 129, H: 2, K: 16, V: 16, M: 0 }, chunk: 64, l2norm: true, h0: true },
];

const CASES: Case[] = SHAPES.flatMap((c) =>
  [[1, 1], [2, 1], [2, 2]].map(([prep, sum]) => {
    const { B, T, H, K, V } = c.shape;
    return {
      ...c,
      name: `prep ${prep}, sum ${sum}: C=${c.chunk}, B${B} T${T} H${H} K${K} V${V}` +
        `${c.l2norm ? "" : ", no l2 norm"}${c.h0 ? ", h0" : ""}`,
      tune: { "deltanet.prep": prep, "deltanet.sum": sum, "deltanet.cps": 2 },
    };
  })
);

/** As deltanet_seg_test.ts: without the l2 norm, ‖k‖² < 1 keeps the state bounded. */
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
  describe("webgpu deltanet prep v1/v2 (segmented forward) vs fp64 oracle", () => {
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
      // The segmented path must be taken, with the prep the case names.
      checkPlan: (c, req) => {
        const limits = be.info().limits as DeviceLimits;
        const NC = Math.ceil(c.shape.T / c.chunk);
        const seg = planDeltaSeg(req, c.chunk, NC, limits);
        assert.equal(seg.sum.v2 !== undefined, c.tune["deltanet.sum"] === 2);
        const p2 = planPrep2(req, c.chunk, limits);
        assert.equal(p2 !== undefined, c.tune["deltanet.prep"] === 2);
      },
    });
  });
}
