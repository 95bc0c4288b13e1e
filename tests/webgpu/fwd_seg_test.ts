/**
 * la's and gla's fwdbwd with the segmented forward (`la.fwd_seg` / `gla.fwd_seg` = 2: seg_out.wgsl
 * with STATES leaving every chunk's starting state for the unchanged backward; kernels/webgpu/
 * la/seg_fwd.ts, gla/seg_fwd.ts) against the fp64 oracle for every output and gradient, and
 * against the three per-chunk forward passes (knob 1), in every storage dtype: several segments
 * per head with cps not dividing the chunk count, a partial last chunk, B·H > 1, K ≠ V, seg_out
 * steps shorter than a chunk and equal to it, la with normalize on and off and with and without
 * h0/z0, gla with and without h0, a head-group split, and the knob's rules (default 1, only 1 or
 * 2, Unsupported naming the knob where the segmented tiles do not fit). Outputs are poisoned
 * first, so a chunk whose state seg_out skipped shows as NaN or a wrong gradient. Same adapter
 * policy as the other WebGPU tests; WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { relErr, runOutputs, storedF64, uniformInputs, withTune } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import { type Backend, Unsupported } from "../../bench/backends/backend.ts";
import { openWebGpu } from "../../bench/backends/webgpu.ts";
import {
  defaultParams,
  type InputName,
  type Inputs,
  type OpParams,
  type OpRequest,
  type Shape,
  type Variant,
} from "../../bench/ops.ts";

import { oracle } from "../../kernels/reference/index.ts";
import { laChunk } from "../../kernels/webgpu/la/chunk_fwd.ts";
import { glaChunk } from "../../kernels/webgpu/gla/chunk_fwd.ts";
import type { DeviceLimits, Plan } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu la/gla fwdbwd segmented forward tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const TOL = { f32: 2e-4, f16: 2e-2, bf16: 2e-2 } as const;
const GRAD_TOL = 3e-2;
/**
 * Knob 2 and 1 compute the same f32 states in a different association (segment sums, then a
 * walk), so they agree to f32 roundings, or a storage ulp where an output is stored in 16 bits.
 */
const AGREE = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 } as const;

interface Case {
  name: string;
  variant: Variant;
  shape: Shape;
  params: Partial<OpParams>;
  /** LAB_WEBGPU_TUNE overrides besides the knob (la.cps, la.sub, gla.cps, gla.kt). */
  tune: Record<string, number>;
  h0: boolean;
  /** la: z0 given too. */
  z0?: boolean;
  /** gla: range of the gates. */
  gates?: [number, number];
  /** Segments per head the plan must make (at least). */
  minSeg: number;
  /**
   * dg's tolerance against the oracle where it is looser: with strong gates dg cancels O(1)
   * terms to an O(e⁻⁹) result, so f32 keeps about 1e-3 of it (chunk_bwd_test.ts, either forward).
   */
  dgTol?: number;
}

const CASES: Case[] = [
  {
    name: "19 chunks in segments of 4, partial last chunk, steps of C, h0 and z0",
    variant: "la",
    shape: { B: 1, T: 150, H: 2, K: 16, V: 12, M: 0 },
    params: { chunk_size: 8 },
    tune: { "la.cps": 4 },
    h0: true,
    z0: true,
    minSeg: 5,
  },
  {
    name: "normalize off, no h0, C=12 (steps of 12), 9 chunks in segments of 2, B=2",
    variant: "la",
    shape: { B: 2, T: 100, H: 1, K: 8, V: 20, M: 0 },
    params: { chunk_size: 12, normalize: false, scale: 0.3 },
    tune: { "la.cps": 2 },
    h0: false,
    minSeg: 5,
  },
  {
    name: "two steps of 8 per chunk of 16, 5 chunks in segments of 3, h0 without z0, H=3",
    variant: "la",
    shape: { B: 1, T: 77, H: 3, K: 12, V: 16, M: 0 },
    params: { chunk_size: 16 },
    tune: { "la.cps": 3, "la.sub": 8 },
    h0: true,
    minSeg: 2,
  },
  {
    name: "normalize off with h0 and z0, steps of 4 in chunks of 20",
    variant: "la",
    shape: { B: 1, T: 130, H: 2, K: 8, V: 8, M: 0 },
    params: { chunk_size: 20, normalize: false, scale: 0.5 },
    tune: { "la.cps": 2, "la.sub": 4 },
    h0: true,
    z0: true,
    minSeg: 4,
  },
  {
    name: "K = V = 64, C=32, 7 chunks in segments of 2",
    variant: "la",
    shape: { B: 1, T: 200, H: 2, K: 64, V: 64, M: 0 },
    params: { chunk_size: 32 },
    tune: { "la.cps": 2 },
    h0: true,
    z0: true,
    minSeg: 4,
  },
  {
    name: "19 chunks in segments of 4, partial last chunk, h0",
    variant: "gla",
    shape: { B: 1, T: 150, H: 2, K: 16, V: 12, M: 0 },
    params: { chunk_size: 8 },
    tune: { "gla.cps": 4 },
    gates: [-0.6, 0],
    h0: true,
    minSeg: 5,
  },
  {
    name: "odd K, V, C; B·H = 3; no h0",
    variant: "gla",
    shape: { B: 3, T: 45, H: 1, K: 7, V: 5, M: 0 },
    params: { chunk_size: 7 },
    tune: { "gla.cps": 2, "gla.kt": 4 },
    gates: [-0.6, 0],
    h0: false,
    minSeg: 4,
  },
  {
    name: "strong gates near logsigmoid(-10), K ≠ V, h0",
    variant: "gla",
    shape: { B: 1, T: 70, H: 2, K: 16, V: 8, M: 0 },
    params: { chunk_size: 16 },
    tune: { "gla.cps": 2 },
    gates: [-10, -9],
    h0: true,
    minSeg: 3,
    dgTol: 1e-2,
  },
];

function request(c: Case): OpRequest {
  return {
    variant: c.variant,
    mode: "fwdbwd",
    params: { ...defaultParams(c.variant, c.shape.K), ...c.params },
    shape: c.shape,
  };
}

function inputs(c: Case, seed: number): Inputs {
  const names: InputName[] = c.variant === "gla"
    ? ["q", "k", "v", "g", "do", ...(c.h0 ? ["h0" as const] : [])]
    : ["q", "k", "v", "do", ...(c.h0 ? ["h0" as const] : []), ...(c.z0 ? ["z0" as const] : [])];
  return uniformInputs(request(c), seed, { names, ranges: { g: c.gates, z0: [0, 2] } });
}

/** The plan under `tune`: the segmented forward (`fwdSeg`) or not. */
function planOf(
  c: Case,
  dtype: "f32" | "f16" | "bf16",
  limits: DeviceLimits,
): Plan & { fwdSeg?: { NSEG: number; cps: number } } {
  const req = request(c);
  return c.variant === "la" ? laChunk.plan(req, dtype, limits) : glaChunk.plan(req, dtype, limits);
}

/**
 * Which forward a prepared op encoded (the segmented passes are labelled `seg …`) and, with
 * `groups`, into how many head groups the backend split it.
 */
function checkEncoded(seg: boolean, groups?: number): (op: unknown) => void {
  return (op) => {
    const info = op as { passLabels?: string[]; groups?: number };
    assert.deepEqual(
      info.passLabels?.slice(0, 3),
      seg ? ["seg state", "seg scan", "seg out"] : ["state", "scan", "out"],
    );
    if (groups !== undefined) assert.equal(info.groups, groups);
  };
}

/** Every output of one fwdbwd run under the case's tiles and `<variant>.fwd_seg` = `version`. */
async function run(
  be: Backend,
  c: Case,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
  version: 1 | 2,
  groups?: number,
): Promise<Record<string, ArrayLike<number>>> {
  return await withTune({ ...c.tune, [`${c.variant}.fwd_seg`]: version }, async () => {
    const plan = planOf(c, dtype, be.info().limits as DeviceLimits);
    if (version === 2) {
      assert.ok(plan.fwdSeg, "the segmented forward must be planned");
      assert.ok(plan.fwdSeg.NSEG >= c.minSeg, `${plan.fwdSeg.NSEG} segments`);
    } else {
      assert.equal(plan.fwdSeg, undefined);
    }
    return await runOutputs(be, request(c), x, dtype, {
      inspect: checkEncoded(version === 2, groups),
    });
  });
}

/** got within the oracle's tolerances and within `agree` of the knob-1 outputs. */
function assertMatches(
  c: Case,
  got: Record<string, ArrayLike<number>>,
  other: Record<string, ArrayLike<number>>,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
): void {
  const req = request(c);
  const ref = oracle(c.variant).backward(storedF64(x, dtype), req.shape, req.params);
  const replay = `WEBGPU_TEST_SEED=${SEED}`;
  for (const [n, out] of Object.entries(got)) {
    const tol = n === "dg" && c.dgTol
      ? Math.max(c.dgTol, dtype === "f32" ? 0 : GRAD_TOL)
      : dtype === "f32"
      ? TOL.f32
      : n === "o" || n === "final_state" || n === "final_z"
      ? TOL[dtype]
      : GRAD_TOL;
    const e = relErr(out, ref[n as keyof typeof ref]!);
    assert.ok(e <= tol, `${n} rel err ${e} > ${tol} (${replay})`);
    const d = relErr(out, Float64Array.from(other[n]));
    assert.ok(d <= AGREE[dtype], `${n} differs from fwd_seg 1 by ${d} (${replay})`);
  }
}

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu la/gla fwdbwd with the segmented forward (fwd_seg 2)", () => {
    it("fwd_seg unset is 2 where it tiles, else 1; only 1 or 2; 2 asked never falls back", async () => {
      const limits = be.info().limits as DeviceLimits;
      for (const c of [CASES[0], CASES.find((c) => c.variant === "gla")!]) {
        const key = `${c.variant}.fwd_seg`;
        await withTune(c.tune, () => {
          assert.ok(planOf(c, "f32", limits).fwdSeg);
          return Promise.resolve();
        });
        for (const bad of [3, 4]) {
          await withTune({ [key]: bad }, () => {
            assert.throws(
              () => planOf(c, "f32", limits),
              new RegExp(`LAB_WEBGPU_TUNE ${key} must be 1 or 2, got ${bad}`),
            );
            return Promise.resolve();
          });
        }
        // Workgroup memory too small for the segmented tiles (la's seg_out needs 752 B here,
        // gla's seg_state 2336 B), while the per-chunk passes still fit (≤ 448 B, ≤ 768 B).
        const tiny = {
          ...limits,
          maxComputeWorkgroupStorageSize: c.variant === "la" ? 640 : 1024,
        };
        const small: Case = { ...c, shape: { ...c.shape, K: 8, V: 8 }, params: { chunk_size: 4 } };
        await withTune({ [key]: 1 }, () => {
          assert.equal(planOf(small, "f32", tiny).fwdSeg, undefined);
          return Promise.resolve();
        });
        assert.equal(planOf(small, "f32", tiny).fwdSeg, undefined);
        await withTune({ [key]: 2 }, () => {
          assert.throws(() => planOf(small, "f32", tiny), (e) => {
            assert.ok(e instanceof Unsupported, String(e));
            assert.match(e.message, new RegExp(`${key}=2`));
            return true;
          });
          return Promise.resolve();
        });
      }
      // la: seg_out's steps (multiples of 4 tokens) cannot stop at every chunk of 10.
      const odd: Case = { ...CASES[0], params: { chunk_size: 10 } };
      await withTune({ "la.fwd_seg": 2 }, () => {
        assert.throws(() => planOf(odd, "f32", limits), /multiple of 4.*la\.fwd_seg=2/s);
        return Promise.resolve();
      });
      assert.equal(planOf(odd, "f32", limits).fwdSeg, undefined);
    });

    const offered = (v: Variant) => be.impls().find((i) => i.variant === v && i.impl === "chunk");
    CASES.forEach((c, ci) => {
      for (const dtype of ["f32", "f16", "bf16"] as const) {
        const name = `${c.variant} ${c.name} ${dtype}`;
        if (!offered(c.variant)?.dtypes.includes(dtype)) {
          it.skip(`${name} (this device has no ${dtype} storage)`, () => {});
          continue;
        }
        if (dtype === "bf16" && c.shape.V % 2 !== 0) {
          it(`${name} is refused with odd V`, async () => {
            await withTune({ ...c.tune, [`${c.variant}.fwd_seg`]: 2 }, async () => {
              await assert.rejects(
                be.prepare(request(c), inputs(c, SEED), { impl: "chunk", dtype }),
                /even V/,
              );
            });
          });
          continue;
        }
        it(name, async () => {
          const x = inputs(c, SEED + 7919 * ci);
          const seg = await run(be, c, x, dtype, 2);
          const three = await run(be, c, x, dtype, 1);
          assertMatches(c, seg, three, x, dtype);
        });
      }
    });

    it("splits heads into groups when one binding cannot hold the workspaces", async () => {
      // la: 5 chunks × (8·12 + 8) f32 = 2080 B of ws per head, v 1920 B per head: a 4500 B
      // binding holds 2 heads, so 4 heads run as 2 groups. gla: 2080 B of ws per head too.
      const split = await openWebGpu({ bindingLimit: 4500 });
      try {
        for (const variant of ["la", "gla"] as const) {
          const c: Case = {
            name: "head groups",
            variant,
            shape: { B: 1, T: 40, H: 4, K: 8, V: 12, M: 0 },
            params: { chunk_size: 8 },
            tune: { [`${variant}.cps`]: 2 },
            h0: true,
            z0: variant === "la",
            gates: [-0.6, 0],
            minSeg: 3,
          };
          const x = inputs(c, SEED + 13);
          const seg = await run(split, c, x, "f32", 2, 2);
          const three = await run(split, c, x, "f32", 1, 2);
          assertMatches(c, seg, three, x, "f32");
        }
      } finally {
        split.close();
      }
    });
  });
}
