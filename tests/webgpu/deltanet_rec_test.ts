/**
 * deltanet's sequential state passes under fwdbwd: deltanet.rec = 2 (chunk_rec2.wgsl,
 * bwd_rec2.wgsl: the register tiles as named vec4s) against the fp64 oracle, and against
 * deltanet.rec = 1 (chunk_rec.wgsl, bwd_rec.wgsl), in every storage dtype: chunk sizes 16 to 64,
 * T not a multiple of the chunk, B·H > 1, K ≠ V, K, V not multiples of 4, value slices that end
 * inside an invocation's four columns and past them, K > C, qk_l2norm on and off, with and without
 * h0. Same adapter policy as the other WebGPU tests; WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe } from "node:test";
import assert from "node:assert/strict";
import { runOutputs, withTune } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import {
  type DeltaCase,
  deltaFwdbwdInputs,
  deltaFwdbwdRequest,
  fwdbwdVersionTests,
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

/** Every output of one fwdbwd run under deltanet.rec = `rec`, after checking the plan took it. */
async function run(
  be: Backend,
  req: OpRequest,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
  rec: number,
): Promise<Record<string, ArrayLike<number>>> {
  return await withTune({ "deltanet.rec": rec }, async () => {
    const limits = be.info().limits as DeviceLimits;
    assert.equal(deltanetChunk.plan(req, dtype, limits).rec, rec);
    return await runOutputs(be, req, x, dtype);
  });
}

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu deltanet rec v2 (fwdbwd) vs fp64 oracle and rec v1", () => {
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
