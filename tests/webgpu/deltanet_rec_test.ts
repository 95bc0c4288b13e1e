/**
 * deltanet's sequential state passes under fwdbwd: deltanet.rec = 2 (chunk_rec2.wgsl,
 * bwd_rec2.wgsl: the register tiles as named vec4s) against the fp64 oracle, and against
 * deltanet.rec = 1 (chunk_rec.wgsl, bwd_rec.wgsl), in every storage dtype: chunk sizes 16 to 64,
 * T not a multiple of the chunk, B·H > 1, K ≠ V, K, V not multiples of 4, value slices that end
 * inside an invocation's four columns and past them, K > C, qk_l2norm on and off, with and without
 * h0. Both runs set deltanet.bwd_seg to 1, so that the sequential passes run (versionTune). And
 * the knob's rules: unset 2 (rec 2 tiles wherever rec 1 does: the same workgroup size and memory),
 * only 1 or 2. Same adapter policy as the other WebGPU tests; WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { runOutputs, withTune } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import {
  type DeltaCase,
  deltaFwdbwdInputs,
  deltaFwdbwdRequest,
  fwdbwdVersionTests,
  versionTune,
} from "./deltanet_cases.ts";
import type { Backend } from "../../bench/backends/backend.ts";
import type { Inputs, OpRequest } from "../../bench/ops.ts";
import { deltanetChunk } from "../../kernels/webgpu/deltanet/chunk_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu deltanet rec v1/v2 tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
/**
 * rec = 1 and 2 do the same f32 operations in the same order; only the compiler's freedom to
 * fuse may tell them apart, by an f32 rounding, or one storage ulp where o is stored narrower.
 */
const AGREE = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 } as const;

const CASES: Omit<DeltaCase, "tune">[] = [
  {
    name: "C=16, 10 chunks, partial last, B·H = 2",
    shape: { B: 1, T: 150, H: 2, K: 16, V: 16, M: 0 },
    chunk: 16,
    l2norm: true,
    h0: true,
  },
  {
    name: "C=20, K, V not multiples of 4",
    shape: { B: 2, T: 77, H: 1, K: 12, V: 10, M: 0 },
    chunk: 20,
    l2norm: false,
    h0: true,
  },
  {
    name: "C=32, K = V = 64, no h0",
    shape: { B: 1, T: 100, H: 2, K: 64, V: 64, M: 0 },
    chunk: 32,
    l2norm: true,
    h0: false,
  },
  {
    name: "C=48, odd K and V, B·H = 3",
    shape: { B: 1, T: 130, H: 3, K: 7, V: 9, M: 0 },
    chunk: 48,
    l2norm: true,
    h0: true,
  },
  {
    name: "C=64, V = 40 (last slice half past V)",
    shape: { B: 2, T: 200, H: 1, K: 16, V: 40, M: 0 },
    chunk: 64,
    l2norm: false,
    h0: false,
  },
];

const request = (c: Omit<DeltaCase, "tune">) => deltaFwdbwdRequest({ ...c, tune: {} });
const inputs = (c: Omit<DeltaCase, "tune">, seed: number) =>
  deltaFwdbwdInputs({ ...c, tune: {} }, seed);

/**
 * Every output of one fwdbwd run under deltanet.rec = `rec` and deltanet.bwd_seg = 1, after
 * checking the plan took the sequential passes at that version.
 */
async function run(
  be: Backend,
  req: OpRequest,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
  rec: number,
): Promise<Record<string, ArrayLike<number>>> {
  return await withTune(versionTune("deltanet.rec", rec), async () => {
    const plan = deltanetChunk.plan(req, dtype, be.info().limits as DeviceLimits);
    assert.equal(plan.rec, rec);
    assert.equal(plan.seg, undefined, "the sequential passes must run");
    return await runOutputs(be, req, x, dtype);
  });
}

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu deltanet rec v2 (fwdbwd) vs fp64 oracle and rec v1", () => {
    it("rec unset is 2, with or without the segmented passes; only 1 or 2", async () => {
      const limits = be.info().limits as DeviceLimits;
      for (const c of CASES) {
        await withTune({ "deltanet.bwd_seg": 1 }, () => {
          const plan = deltanetChunk.plan(request(c), "f32", limits);
          assert.equal(plan.rec, 2, c.name);
          assert.equal(plan.seg, undefined, c.name);
          return Promise.resolve();
        });
      }
      // Unset both: rec is still 2 where bwd_seg 2's tiles fit (the first case) and where
      // they do not (workgroup memory for the sequential passes only, as in
      // deltanet_bwdseg_test.ts), where rec 2 runs.
      const plan = deltanetChunk.plan(request(CASES[0]), "f32", limits);
      assert.equal(plan.rec, 2);
      assert.ok(plan.seg?.bwd, "the segmented passes must fit");
      const small = { ...CASES[0], shape: { ...CASES[0].shape, K: 8, V: 8 }, chunk: 4 };
      const tiny = { ...limits, maxComputeWorkgroupStorageSize: 400 };
      const seq = deltanetChunk.plan(request(small), "f32", tiny);
      assert.equal(seq.seg, undefined);
      assert.equal(seq.rec, 2);
      for (const bad of [3, 4]) {
        await withTune({ "deltanet.rec": bad }, () => {
          assert.throws(
            () => deltanetChunk.plan(request(CASES[0]), "f32", limits),
            new RegExp(`LAB_WEBGPU_TUNE deltanet\\.rec must be 1 or 2, got ${bad}`),
          );
          return Promise.resolve();
        });
      }
    });
    fwdbwdVersionTests(be, CASES, {
      knob: "deltanet.rec",
      seed: SEED,
      agree: AGREE,
      request,
      inputs,
      run: (c, x, dtype, version) => run(be, request(c), x, dtype, version),
    });
  });
}
