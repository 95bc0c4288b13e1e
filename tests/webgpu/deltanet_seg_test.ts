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
import { type DeltaCase, deltaInputs, deltaRequest } from "./deltanet_cases.ts";
import { planDeltaSeg } from "../../kernels/webgpu/deltanet/seg_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu deltanet segmented forward tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));

const CASES: DeltaCase[] = [
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

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu deltanet segmented forward vs fp64 oracle", () => {
    tunedForwardTests(be, "deltanet", CASES, {
      seed: SEED,
      request: deltaRequest,
      inputs: deltaInputs,
      // The case must take the segmented path with the segments it was tuned to.
      checkPlan: (c, req) => {
        const NC = Math.ceil(c.shape.T / c.chunk);
        const seg = planDeltaSeg(req, c.chunk, NC, be.info().limits as DeviceLimits);
        assert.equal(seg.cps, Math.min(c.tune["deltanet.cps"], NC));
      },
    });
  });
}
