/**
 * rmt forward with the memory pass's second kernel (rmt.mem = 2: kernels/webgpu/rmt/memory2.wgsl)
 * against the fp64 oracle (o and final_state) and against rmt.mem = 1 (segment.wgsl's memory
 * rows), in every storage dtype: several segments with T not a multiple of L and a partial last
 * segment, B·H > 1, M = 1, 5, 16 and 37 (three row blocks of 16, the last partial), D = 64, 128
 * (two output columns per invocation), 10 and 7 (not multiples of 4; odd D refused in bf16), key
 * tiles of 16, 32 and 64 (1, 2, 4 keys per invocation) with partial last tiles. Outputs are
 * poisoned with NaN before every run, so an element the kernel leaves unwritten fails the check.
 * Same adapter policy as the other WebGPU tests; WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { relErr, storedF64, uniformInputs, withTune } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import type { Backend } from "../../bench/backends/backend.ts";
import { defaultParams, type Inputs, type OpRequest, type Shape } from "../../bench/ops.ts";

import { oracle } from "../../kernels/reference/index.ts";
import { planSegments } from "../../kernels/webgpu/rmt/rmt_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu rmt memory2 tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const TOL = { f32: 2e-4, f16: 2e-2, bf16: 2e-2 } as const;
/**
 * Both kernels compute the same f32 online softmax in another order (tile sizes, summation
 * order), so the memories agree to f32 roundings and o to a storage ulp here and there.
 */
const AGREE = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 } as const;

interface Case {
  name: string;
  shape: Shape;
  L: number;
  /** rmt.mem_tk forced (else the default, 64 halved until it fits). */
  tk?: number;
}

const CASES: Case[] = [
  {
    name: "D=64 M=16, 3 segments of 64 (last 37), B·H = 2",
    shape: { B: 1, T: 165, H: 2, K: 64, V: 64, M: 16 },
    L: 64,
  },
  {
    name: "D=16 M=1, 5 segments of 24 (last 4), B·H = 2, TK 64",
    shape: { B: 2, T: 100, H: 1, K: 16, V: 16, M: 1 },
    L: 24,
    tk: 64,
  },
  {
    name: "D=10 M=5, 4 segments of 16 (last 2), B·H = 3, TK 16",
    shape: { B: 1, T: 50, H: 3, K: 10, V: 10, M: 5 },
    L: 16,
    tk: 16,
  },
  {
    name: "D=32 M=37 (3 row blocks), 3 segments of 40 (last 10), B·H = 2, TK 64",
    shape: { B: 2, T: 90, H: 1, K: 32, V: 32, M: 37 },
    L: 40,
    tk: 64,
  },
  {
    name: "D=128 M=16, 3 segments of 32 (last 6), TK 32 where it fits",
    shape: { B: 1, T: 70, H: 1, K: 128, V: 128, M: 16 },
    L: 32,
    tk: 32,
  },
  {
    name: "D=7 M=3, one segment (T < L), B·H = 4",
    shape: { B: 2, T: 13, H: 2, K: 7, V: 7, M: 3 },
    L: 20,
  },
];

function request(c: Case): OpRequest {
  return {
    variant: "rmt",
    mode: "fwd",
    params: { ...defaultParams("rmt", c.shape.K), segment_len: c.L },
    shape: c.shape,
  };
}

function tune(c: Case, mode: 1 | 2): Record<string, number> {
  return { "rmt.mem": mode, ...(c.tk ? { "rmt.mem_tk": c.tk } : {}) };
}

/** o and final_state of one run under rmt.mem = `mode`, outputs poisoned first. */
async function run(
  be: Backend,
  c: Case,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
  mode: 1 | 2,
): Promise<Record<"o" | "final_state", ArrayLike<number>>> {
  const req = request(c);
  return await withTune(tune(c, mode), async () => {
    const plan = planSegments(req, dtype, be.info().limits as DeviceLimits);
    if (mode === 2) {
      assert.ok(plan.mem2, "rmt.mem 2 must plan memory2.wgsl");
      const limit = (be.info().limits as DeviceLimits).maxComputeWorkgroupStorageSize;
      if (c.tk && limit >= 32768 && c.shape.K <= 64) assert.equal(plan.mem2.TK, c.tk);
    } else {
      assert.equal(plan.mem2, undefined);
    }
    const op = await be.prepare(req, x, { impl: "chunk", dtype });
    try {
      await op.poison();
      await op.run();
      const out = await op.read();
      return { o: out.o!.data, final_state: out.final_state!.data };
    } finally {
      op.dispose();
    }
  });
}

if (backend) {
  const be = backend;
  after(() => be.close());
  const offered = be.impls().find((i) => i.variant === "rmt" && i.impl === "chunk");
  const limits = be.info().limits as DeviceLimits;
  describe("webgpu rmt memory pass, rmt.mem 2 vs fp64 oracle and rmt.mem 1", () => {
    it("rmt.mem unset is 2 where it tiles, else 1; only 1 or 2; rmt.mem_tk only 16, 32, 64; D > 128 refused when asked", async () => {
      const req = request(CASES[0]);
      assert.ok(planSegments(req, "f32", limits).mem2);
      await withTune({ "rmt.mem": 3 }, () => {
        assert.throws(() => planSegments(req, "f32", limits), /1 or 2/);
        return Promise.resolve();
      });
      await withTune({ "rmt.mem": 2, "rmt.mem_tk": 48 }, () => {
        assert.throws(() => planSegments(req, "f32", limits), /16, 32 or 64/);
        return Promise.resolve();
      });
      const wide = request({ ...CASES[0], shape: { ...CASES[0].shape, K: 144, V: 144 } });
      assert.equal(planSegments(wide, "f32", limits).mem2, undefined);
      await withTune({ "rmt.mem": 2 }, () => {
        // rmt.mem 1 takes D = 144 (up to 256); mode 2 holds two vec4 columns an invocation.
        assert.throws(() => planSegments(wide, "f32", limits), /D=144/);
        return Promise.resolve();
      });
    });
    it("poison reaches o and final_state (an unwritten element would fail)", async () => {
      const c = CASES[0];
      const op = await be.prepare(request(c), uniformInputs(request(c), SEED), {
        impl: "chunk",
        dtype: "f32",
      });
      try {
        await op.poison();
        const out = await op.read();
        assert.ok([...out.o!.data].every(Number.isNaN));
        assert.ok([...out.final_state!.data].every(Number.isNaN));
      } finally {
        op.dispose();
      }
    });
    CASES.forEach((c, ci) => {
      for (const dtype of ["f32", "f16", "bf16"] as const) {
        const name = `${c.name} ${dtype}`;
        if (!offered?.dtypes.includes(dtype)) {
          it.skip(`${name} (this device has no ${dtype} storage)`, () => {});
          continue;
        }
        if (dtype === "bf16" && c.shape.K % 2 !== 0) {
          it(`${name} is refused with odd D`, async () => {
            await withTune(tune(c, 2), async () => {
              await assert.rejects(
                be.prepare(request(c), uniformInputs(request(c), SEED), { impl: "chunk", dtype }),
                /even D/,
              );
            });
          });
          continue;
        }
        it(name, async () => {
          const req = request(c);
          const seed = SEED + 7919 * ci;
          const x = uniformInputs(req, seed);
          const two = await run(be, c, x, dtype, 2);
          const one = await run(be, c, x, dtype, 1);
          const ref = oracle("rmt").forward(storedF64(x, dtype), req.shape, req.params);
          for (const n of ["o", "final_state"] as const) {
            const e = relErr(two[n], ref[n]!);
            assert.ok(
              e <= TOL[dtype],
              `${n} rel err ${e} > ${TOL[dtype]} (WEBGPU_TEST_SEED=${seed})`,
            );
            const d = relErr(two[n], Float64Array.from(one[n]));
            assert.ok(
              d <= AGREE[dtype],
              `${n} differs from rmt.mem 1 by ${d} (WEBGPU_TEST_SEED=${seed})`,
            );
          }
        });
      }
    });
  });
}
