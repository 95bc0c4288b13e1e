/**
 * deltanet's sequential state passes under fwdbwd (deltanet.bwd_seg = 1: chunk_rec.wgsl,
 * bwd_rec.wgsl) against the fp64 oracle, every output and gradient, in every storage dtype: chunk
 * sizes 16 to 64, T not a multiple of the chunk, B·H > 1, K ≠ V, K, V not multiples of 4, value
 * slices that end inside an invocation's four columns and past them, K > C, qk_l2norm on and
 * off, with and without h0; bf16 with odd V refused. Same adapter policy as the other WebGPU
 * tests; WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { runOutputs, withTune } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import {
  assertFwdbwdOracle,
  type DeltaCase,
  deltaFwdbwdInputs,
  deltaFwdbwdRequest,
} from "./deltanet_cases.ts";
import type { Backend } from "../../bench/backends/backend.ts";
import type { Inputs, OpRequest } from "../../bench/ops.ts";
import { deltanetChunk } from "../../kernels/webgpu/deltanet/chunk_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu deltanet sequential-pass tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
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
 * Every output of one fwdbwd run under deltanet.bwd_seg = 1, after checking the plan took the
 * sequential passes.
 */
async function run(
  be: Backend,
  req: OpRequest,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
): Promise<Record<string, ArrayLike<number>>> {
  return await withTune({ "deltanet.bwd_seg": 1 }, async () => {
    const plan = deltanetChunk.plan(req, dtype, be.info().limits as DeviceLimits);
    assert.equal(plan.seg, undefined, "the sequential passes must run");
    return await runOutputs(be, req, x, dtype);
  });
}

if (backend) {
  const be = backend;
  after(() => be.close());
  const offered = be.impls().find((i) => i.variant === "deltanet" && i.impl === "chunk");
  describe("webgpu deltanet sequential passes (fwdbwd, bwd_seg 1) vs fp64 oracle", () => {
    CASES.forEach((c, ci) => {
      for (const dtype of ["f32", "f16", "bf16"] as const) {
        const name = `${c.name}${c.l2norm ? "" : ", no l2 norm"}${c.h0 ? ", h0" : ""} ${dtype}`;
        if (!offered?.dtypes.includes(dtype)) {
          it.skip(`${name} (this device has no ${dtype} storage)`, () => {});
          continue;
        }
        if (dtype === "bf16" && c.shape.V % 2 !== 0) {
          it(`${name} is refused with odd V`, async () => {
            await assert.rejects(
              be.prepare(request(c), inputs(c, SEED), { impl: "chunk", dtype }),
              /even V/,
            );
          });
          continue;
        }
        it(name, async () => {
          const x = inputs(c, SEED + 7919 * ci);
          const got = await run(be, request(c), x, dtype);
          assertFwdbwdOracle("sequential", got, request(c), x, dtype, `WEBGPU_TEST_SEED=${SEED}`);
        });
      }
    });
  });
}
