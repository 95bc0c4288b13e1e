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
import { type DeltaCase, deltaInputs, deltaRequest } from "./deltanet_cases.ts";
import { planDeltaSeg } from "../../kernels/webgpu/deltanet/seg_fwd.ts";
import { planPrep2 } from "../../kernels/webgpu/deltanet/chunk_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu deltanet prep v1/v2 tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));

const SHAPES: Omit<DeltaCase, "tune" | "name">[] = [
  { shape: { B: 1, T: 150, H: 2, K: 16, V: 16, M: 0 }, chunk: 16, l2norm: true, h0: true },
  { shape: { B: 2, T: 77, H: 1, K: 12, V: 10, M: 0 }, chunk: 20, l2norm: false, h0: true },
  { shape: { B: 1, T: 100, H: 2, K: 64, V: 64, M: 0 }, chunk: 32, l2norm: true, h0: false },
  { shape: { B: 1, T: 130, H: 3, K: 7, V: 9, M: 0 }, chunk: 48, l2norm: true, h0: true },
  { shape: { B: 2, T: 200, H: 1, K: 16, V: 24, M: 0 }, chunk: 64, l2norm: false, h0: false },
  { shape: { B: 1, T: 129, H: 2, K: 16, V: 16, M: 0 }, chunk: 64, l2norm: true, h0: true },
];

const CASES: DeltaCase[] = SHAPES.flatMap((c) =>
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

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu deltanet prep v1/v2 (segmented forward) vs fp64 oracle", () => {
    tunedForwardTests(be, "deltanet", CASES, {
      seed: SEED,
      request: deltaRequest,
      inputs: deltaInputs,
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
