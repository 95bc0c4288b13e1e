/**
 * deltanet's sequential state passes under fwdbwd: deltanet.rec = 2 (chunk_rec2.wgsl,
 * bwd_rec2.wgsl: the register tiles as named vec4s) against the fp64 oracle, and against
 * deltanet.rec = 1 (chunk_rec.wgsl, bwd_rec.wgsl), in every storage dtype: chunk sizes 16 to 64,
 * T not a multiple of the chunk, B·H > 1, K ≠ V, K, V not multiples of 4, value slices that end
 * inside an invocation's four columns and past them, K > C, qk_l2norm on and off, with and without
 * h0. Same adapter policy as the other WebGPU tests; WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { relErr, withTune } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import { type DeltaCase, deltaInputs, deltaRequest } from "./deltanet_cases.ts";
import type { Backend } from "../../bench/backends/backend.ts";
import { type Inputs, inputShape, type OpRequest, outputShapes } from "../../bench/ops.ts";
import { cast, numel, type Tensor, tensor, toF64 } from "../../bench/tensor.ts";
import { mulberry32 as rng } from "../../bench/stats.ts";
import { oracle } from "../../kernels/reference/index.ts";
import { deltanetChunk } from "../../kernels/webgpu/deltanet/chunk_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu deltanet rec v1/v2 tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const TOL = { f32: 2e-4, f16: 2e-2, bf16: 2e-2 } as const;
const GRAD_TOL = 3e-2;
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

function request(c: Omit<DeltaCase, "tune">): OpRequest {
  return { ...deltaRequest({ ...c, tune: {} }), mode: "fwdbwd" };
}

function inputs(c: Omit<DeltaCase, "tune">, seed: number): Inputs {
  const x = deltaInputs({ ...c, tune: {} }, seed);
  const r = rng(seed + 1);
  const d = new Float32Array(numel(inputShape("do", c.shape)));
  for (let i = 0; i < d.length; i++) d[i] = 2 * r() - 1;
  return { ...x, do: tensor("f32", inputShape("do", c.shape), d) };
}

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
    const op = await be.prepare(req, x, { impl: "chunk", dtype });
    try {
      await op.poison();
      await op.run();
      const out = await op.read();
      return Object.fromEntries(
        Object.keys(outputShapes(req, x)).map((n) => {
          const t = out[n as keyof typeof out];
          assert.ok(t, `output ${n} missing`);
          return [n, t.data];
        }),
      );
    } finally {
      op.dispose();
    }
  });
}

if (backend) {
  const be = backend;
  after(() => be.close());
  const offered = be.impls().find((i) => i.variant === "deltanet" && i.impl === "chunk");
  describe("webgpu deltanet rec v2 (fwdbwd) vs fp64 oracle and rec v1", () => {
    CASES.forEach((c, ci) => {
      for (const dtype of ["f32", "f16", "bf16"] as const) {
        const name = `${c.name}${c.l2norm ? "" : ", no l2 norm"}${c.h0 ? ", h0" : ""} ${dtype}`;
        if (!offered?.dtypes.includes(dtype)) {
          it.skip(`${name} (this device has no ${dtype} storage)`, () => {});
          continue;
        }
        if (dtype === "bf16" && c.shape.V % 2 !== 0) {
          it(`${name} is refused with odd V`, async () => {
            await withTune({ "deltanet.rec": 2 }, async () => {
              await assert.rejects(
                be.prepare(request(c), inputs(c, SEED), { impl: "chunk", dtype }),
                /even V/,
              );
            });
          });
          continue;
        }
        it(name, async () => {
          const req = request(c);
          const x = inputs(c, SEED + 7919 * ci);
          const v2 = await run(be, req, x, dtype, 2);
          const v1 = await run(be, req, x, dtype, 1);
          const x64: Record<string, Float64Array> = {};
          for (const [n, t] of Object.entries(x) as [string, Tensor][]) {
            x64[n] = toF64(n === "h0" ? t : cast(t, dtype));
          }
          const ref = oracle("deltanet").backward(x64, req.shape, req.params);
          const replay = `WEBGPU_TEST_SEED=${SEED}`;
          for (const [n, got] of Object.entries(v2)) {
            const tol = dtype === "f32"
              ? TOL.f32
              : n === "o" || n === "final_state"
              ? TOL[dtype]
              : GRAD_TOL;
            const e = relErr(got, ref[n as keyof typeof ref]!);
            assert.ok(e <= tol, `rec 2: ${n} rel err ${e} > ${tol} (${replay})`);
            const d = relErr(got, Float64Array.from(v1[n]));
            assert.ok(d <= AGREE[dtype], `rec 2 vs 1: ${n} differs by ${d} (${replay})`);
          }
        });
      }
    });
  });
}
