/**
 * deltanet fwdbwd with the segmented state passes (deltanet.bwd_seg = 2: seg_out.wgsl with STATES,
 * bwd_seg.wgsl, bwd_seg_scan.wgsl; kernels/webgpu/deltanet/seg_fwd.ts) against the fp64 oracle
 * for every output and gradient, and against bwd_seg = 1 (the sequential chunk_rec.wgsl and
 * bwd_rec.wgsl), in every storage dtype: at least three segments per head with cps not dividing
 * the chunk count and a partial last chunk, one chunk per segment, B·H > 1, K ≠ V, K, V, C not
 * multiples of 4, several value-column tiles, Mᵀ streamed in slices, qk_l2norm on and off, with
 * and without h0. Chunk sizes ≤ 32 so every case fits lavapipe's 32 KiB of workgroup memory.
 * And the knob's rules: unset 2 where the
 * segmented tiles fit, else 1; only 1 or 2; 2 asked for never falls back (Unsupported naming the
 * knob). Same adapter policy as the other WebGPU tests; WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { runOutputs, withTune } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import {
  type DeltaCase,
  deltaFwdbwdInputs as inputs,
  deltaFwdbwdRequest as request,
  fwdbwdVersionTests,
} from "./deltanet_cases.ts";
import { type Backend, Unsupported } from "../../bench/backends/backend.ts";
import type { Inputs } from "../../bench/ops.ts";
import { deltanetChunk } from "../../kernels/webgpu/deltanet/chunk_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu deltanet segmented fwdbwd tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
/**
 * bwd_seg = 2 and 1 compute the same f32 quantities in a different association (segment maps
 * composed, then applied), so they agree to a few f32 roundings carried through the recurrence,
 * or a storage ulp here and there where an output is stored in 16 bits.
 */
const AGREE = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 } as const;

const CASES: DeltaCase[] = [
  {
    name: "C=16, 10 chunks in segments of 3, partial last chunk, B·H = 2",
    shape: { B: 1, T: 150, H: 2, K: 16, V: 16, M: 0 },
    chunk: 16,
    tune: { "deltanet.cps": 3 },
    l2norm: true,
    h0: true,
  },
  {
    name: "C=8, 50 chunks in segments of 7, narrow tiles, Mᵀ in slices",
    shape: { B: 2, T: 397, H: 1, K: 16, V: 12, M: 0 },
    chunk: 8,
    tune: {
      "deltanet.cps": 7,
      "deltanet.out_cols": 8,
      "deltanet.bwd_cols": 4,
      "deltanet.scan_cols": 4,
      "deltanet.scan_kt": 4,
    },
    l2norm: false,
    h0: true,
  },
  {
    name: "odd K, V, C; one chunk per segment; B·H = 3",
    shape: { B: 3, T: 41, H: 1, K: 7, V: 5, M: 0 },
    chunk: 5,
    tune: { "deltanet.cps": 1, "deltanet.bwd_cols": 4 },
    l2norm: true,
    h0: true,
  },
  {
    name: "K < V, C=12, 17 chunks in segments of 5, no h0",
    shape: { B: 1, T: 200, H: 2, K: 8, V: 20, M: 0 },
    chunk: 12,
    tune: { "deltanet.cps": 5 },
    l2norm: false,
    h0: false,
  },
  {
    name: "K = V = 64, C=32, 10 chunks in segments of 4",
    shape: { B: 1, T: 300, H: 2, K: 64, V: 64, M: 0 },
    chunk: 32,
    tune: { "deltanet.cps": 4 },
    l2norm: true,
    h0: true,
  },
];

/**
 * Every output of one fwdbwd run under the case's tiles and deltanet.bwd_seg = `bwdSeg`, after
 * checking the plan took the segmented passes (2) or the sequential ones (1).
 */
async function run(
  be: Backend,
  c: DeltaCase,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
  bwdSeg: 1 | 2,
): Promise<Record<string, ArrayLike<number>>> {
  const req = request(c);
  return await withTune({ ...c.tune, "deltanet.bwd_seg": bwdSeg }, async () => {
    const plan = deltanetChunk.plan(req, dtype, be.info().limits as DeviceLimits);
    if (bwdSeg === 2) {
      assert.ok(plan.seg?.bwd, "the segmented passes must fit");
      const NC = Math.ceil(c.shape.T / c.chunk);
      assert.equal(plan.seg.cps, Math.min(c.tune["deltanet.cps"], NC));
      assert.ok(plan.seg.NSEG >= 3, `${plan.seg.NSEG} segments`);
    } else {
      assert.equal(plan.seg, undefined);
    }
    return await runOutputs(be, req, x, dtype);
  });
}

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu deltanet segmented fwdbwd (bwd_seg 2) vs fp64 oracle and bwd_seg 1", () => {
    it("bwd_seg unset is 2 where it tiles, else 1; only 1 or 2; 2 asked never falls back", async () => {
      const c = CASES[0];
      const limits = be.info().limits as DeviceLimits;
      await withTune(c.tune, () => {
        assert.ok(deltanetChunk.plan(request(c), "f32", limits).seg?.bwd);
        // Mode fwd plans its segmented forward without the knob.
        const fwd = deltanetChunk.plan({ ...request(c), mode: "fwd" }, "f32", limits);
        assert.ok(fwd.seg && !fwd.seg.bwd);
        return Promise.resolve();
      });
      for (const bad of [3, 4]) {
        for (const mode of ["fwd", "fwdbwd"] as const) {
          await withTune({ "deltanet.bwd_seg": bad }, () => {
            assert.throws(
              () => deltanetChunk.plan({ ...request(c), mode }, "f32", limits),
              new RegExp(`LAB_WEBGPU_TUNE deltanet\\.bwd_seg must be 1 or 2, got ${bad}`),
            );
            return Promise.resolve();
          });
        }
      }
      // Workgroup memory too small for bwd_seg.wgsl's tile (448 B here at its narrowest), while
      // the sequential plan still fits (chunk_prep.wgsl's 320 B).
      const small = { ...c, shape: { ...c.shape, K: 8, V: 8 }, chunk: 4 };
      const tiny = { ...limits, maxComputeWorkgroupStorageSize: 400 };
      assert.equal(deltanetChunk.plan(request(small), "f32", tiny).seg, undefined);
      await withTune({ "deltanet.bwd_seg": 1 }, () => {
        assert.equal(deltanetChunk.plan(request(small), "f32", tiny).seg, undefined);
        return Promise.resolve();
      });
      await withTune({ "deltanet.bwd_seg": 2 }, () => {
        assert.throws(() => deltanetChunk.plan(request(small), "f32", tiny), (e) => {
          assert.ok(e instanceof Unsupported, String(e));
          assert.match(e.message, /bwd_cols tile.*deltanet\.bwd_seg=2/s);
          return true;
        });
        return Promise.resolve();
      });
    });
    fwdbwdVersionTests(be, CASES, {
      knob: "deltanet.bwd_seg",
      seed: SEED,
      agree: AGREE,
      request,
      inputs,
      tune: (c) => c.tune,
      run: (c, x, dtype, version) => run(be, c, x, dtype, version),
      check: (c, got) => {
        const names = ["o", "final_state", "dq", "dk", "dv", "dbeta", ...(c.h0 ? ["dh0"] : [])];
        assert.deepEqual(Object.keys(got).sort(), names.sort());
      },
    });
  });
}
