/**
 * deltanet's `bwd grad` pass under fwdbwd: deltanet.grad = 2 (bwd_grad2.wgsl: the products as
 * 4×4 register tiles over vec4 rows in workgroup memory) against the fp64 oracle for every output
 * and gradient (dq, dk, dv, dβ, and dh0 with h0), and against deltanet.grad = 1 (bwd_grad.wgsl),
 * in every storage dtype (bf16 only where K and V are even: odd rows are refused for packed
 * pairs): C = 5 to 64 (C = 64 fills every C×C tile), T not a multiple of the chunk, B·H > 1,
 * K ≠ V, odd K, V and C, K = V = 64 (every C×K tile), qk_l2norm on and off, with and without h0,
 * under both backward paths that run bwd grad (deltanet.bwd_seg 1 and 2). And the knob's rules:
 * unset 2 where it tiles and 1 where it does not (2 won the H100 A/B), only 1 or 2, 2 asked for
 * where it cannot tile throws Unsupported naming the knob. Same adapter policy as the other WebGPU tests;
 * WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { runOutputs, withTune } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import {
  assertFwdbwdMatches,
  type DeltaCase,
  deltaFwdbwdInputs as inputs,
  deltaFwdbwdRequest as request,
} from "./deltanet_cases.ts";
import { type Backend, Unsupported } from "../../bench/backends/backend.ts";
import type { Inputs } from "../../bench/ops.ts";
import { deltanetChunk } from "../../kernels/webgpu/deltanet/chunk_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu deltanet grad v1/v2 tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
/**
 * grad = 1 and 2 compute the same f32 quantities in another association (tiled sums, dβ's
 * second term as k_i·(dA K)_i instead of Σ_j dA_ij k_i·k_j), so they agree to a few f32
 * roundings, or a storage ulp here and there where a gradient is stored in 16 bits.
 */
const AGREE = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 } as const;

/** A case and the backward path it runs under (deltanet.bwd_seg); `tune` holds its tiles. */
interface GradCase extends DeltaCase {
  bwdSeg: 1 | 2;
}

const CASES: GradCase[] = [
  {
    name: "C=64, K = V = 16, partial last chunk, B·H = 2, bwd_seg 1",
    shape: { B: 1, T: 150, H: 2, K: 16, V: 16, M: 0 },
    chunk: 64,
    tune: {},
    bwdSeg: 1,
    l2norm: true,
    h0: true,
  },
  {
    name: "C=16, 10 chunks in segments of 3, B·H = 2, bwd_seg 2",
    shape: { B: 1, T: 150, H: 2, K: 16, V: 16, M: 0 },
    chunk: 16,
    tune: { "deltanet.cps": 3 },
    bwdSeg: 2,
    l2norm: false,
    h0: true,
  },
  {
    name: "C=32, K = V = 64, bwd_seg 2",
    shape: { B: 1, T: 100, H: 2, K: 64, V: 64, M: 0 },
    chunk: 32,
    tune: { "deltanet.cps": 2 },
    bwdSeg: 2,
    l2norm: true,
    h0: false,
  },
  {
    name: "odd K, V, C; B·H = 3, bwd_seg 2",
    shape: { B: 3, T: 41, H: 1, K: 7, V: 5, M: 0 },
    chunk: 5,
    tune: { "deltanet.cps": 3 },
    bwdSeg: 2,
    l2norm: true,
    h0: true,
  },
  {
    name: "C=12, K < V, K, V not multiples of 4, bwd_seg 1",
    shape: { B: 2, T: 77, H: 1, K: 6, V: 18, M: 0 },
    chunk: 12,
    tune: {},
    bwdSeg: 1,
    l2norm: false,
    h0: false,
  },
];

/** The version knobs of one run: deltanet.grad and the case's backward path. */
function knobs(c: GradCase, grad: number): Record<string, number> {
  return { ...c.tune, "deltanet.bwd_seg": c.bwdSeg, "deltanet.grad": grad };
}

/**
 * Every output of one fwdbwd run under deltanet.grad = `grad`, after checking the plan took that
 * version of bwd grad on the case's backward path.
 */
async function run(
  be: Backend,
  c: GradCase,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
  grad: 1 | 2,
): Promise<Record<string, ArrayLike<number>>> {
  const req = request(c);
  return await withTune(knobs(c, grad), async () => {
    const plan = deltanetChunk.plan(req, dtype, be.info().limits as DeviceLimits);
    assert.equal(!!plan.seg?.bwd, c.bwdSeg === 2, "the case's backward path");
    assert.equal(!!plan.grad2, grad === 2);
    assert.equal("wsx" in plan.workspace, grad === 1, "grad 2 needs no per-chunk scratch");
    return await runOutputs(be, req, x, dtype);
  });
}

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu deltanet bwd grad v2 vs fp64 oracle and v1", () => {
    it("grad unset is 2 where it tiles, else 1; only 1 or 2; 2 asked where it cannot tile throws Unsupported", async () => {
      const limits = be.info().limits as DeviceLimits;
      const c = CASES[0];
      const tiles = { WG: 256, RT: 16, RK: 4, RV: 4, SL: 1024 };
      assert.deepEqual(deltanetChunk.plan(request(c), "f32", limits).grad2, tiles);
      await withTune({ "deltanet.grad": 1 }, () => {
        assert.equal(deltanetChunk.plan(request(c), "f32", limits).grad2, undefined);
        return Promise.resolve();
      });
      await withTune({ "deltanet.grad": 2 }, () => {
        const g = deltanetChunk.plan(request(c), "f32", limits).grad2;
        assert.deepEqual(g, tiles);
        // Mode fwd has no backward: the knob is read, nothing planned.
        assert.equal(
          deltanetChunk.plan({ ...request(c), mode: "fwd" }, "f32", limits).grad2,
          undefined,
        );
        return Promise.resolve();
      });
      for (const mode of ["fwd", "fwdbwd"] as const) {
        await withTune({ "deltanet.grad": 3 }, () => {
          assert.throws(
            () => deltanetChunk.plan({ ...request(c), mode }, "f32", limits),
            /LAB_WEBGPU_TUNE deltanet\.grad must be 1 or 2, got 3/,
          );
          return Promise.resolve();
        });
      }
      // K = 128 needs 32 column tiles per row tile, more than one tile per invocation at C = 64
      // (grad 1 plans it), and its slots would need 128 KiB at C = 16.
      const wide = { ...c, shape: { ...c.shape, K: 128, V: 16 }, chunk: 16 };
      const big = { ...limits, maxComputeWorkgroupStorageSize: 1 << 20 };
      const refused = (x: GradCase, l: DeviceLimits, why: RegExp) =>
        assert.throws(() => deltanetChunk.plan(request(x), "f32", l), (e) => {
          assert.ok(e instanceof Unsupported, String(e));
          assert.match(e.message, /deltanet\.grad=2/);
          assert.match(e.message, why);
          return true;
        });
      // Unset, the default falls back to 1 where 2 cannot tile.
      assert.ok(deltanetChunk.plan(request(wide), "f32", limits).workspace.wsx);
      await withTune({ "deltanet.grad": 2 }, () => {
        refused(wide, limits, /workgroup memory/);
        refused({ ...wide, chunk: 64 }, big, /tiles per workgroup/);
        refused(c, { ...limits, maxComputeWorkgroupStorageSize: 30000 }, /workgroup memory/);
        return Promise.resolve();
      });
    });
    const replay = `WEBGPU_TEST_SEED=${SEED}`;
    const offered = be.impls().find((i) => i.variant === "deltanet" && i.impl === "chunk");
    CASES.forEach((c, ci) => {
      for (const dtype of ["f32", "f16", "bf16"] as const) {
        const name = `${c.name}${c.l2norm ? "" : ", no l2 norm"}${c.h0 ? ", h0" : ""} ${dtype}`;
        if (!offered?.dtypes.includes(dtype)) {
          it.skip(`${name} (this device has no ${dtype} storage)`, () => {});
          continue;
        }
        if (dtype === "bf16" && (c.shape.K % 2 !== 0 || c.shape.V % 2 !== 0)) {
          it(`${name} is refused with odd rows`, async () => {
            await withTune(knobs(c, 2), async () => {
              await assert.rejects(
                be.prepare(request(c), inputs(c, SEED), { impl: "chunk", dtype }),
                /even/,
              );
            });
          });
          continue;
        }
        it(name, async () => {
          const x = inputs(c, SEED + 7919 * ci);
          const v2 = await run(be, c, x, dtype, 2);
          const v1 = await run(be, c, x, dtype, 1);
          const names = ["o", "final_state", "dq", "dk", "dv", "dbeta", ...(c.h0 ? ["dh0"] : [])];
          assert.deepEqual(Object.keys(v2).sort(), names.sort());
          assertFwdbwdMatches("grad 2", v2, v1, AGREE[dtype], request(c), x, dtype, replay);
        });
      }
    });
  });
}
