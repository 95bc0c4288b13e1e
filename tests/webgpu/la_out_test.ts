/**
 * The versions of la's segmented forward passes (kernels/webgpu/la/seg_fwd.ts) above 1: `la.out`
 * 5 (the default) and 6 (seg_out5–6.wgsl) and `la.state` 3 (the default, seg_state3.wgsl), each
 * against the fp64 oracle and against version 1 (`la.out` = `la.state` = 1), in every storage
 * dtype, with normalize on and off, with and without h0/z0, in mode fwd and in fwdbwd with the
 * segmented forward (`la.fwd_seg` = 2, seg_out's STATES; every gradient checked, as the backward
 * reads the per-chunk states the walk leaves). Shapes: several segments per head with T not a
 * multiple of the step, chunk or segment, B·H > 1, odd K, odd V (bf16 refuses it), steps shorter
 * than a chunk, two prefetched blocks per invocation and more invocations than version 1, and
 * K = V = 64. Also the knobs' rules: unset, the preferred version or the next older one that
 * tiles (la.out 6, untimed, only when asked for); bad and deleted values refused; asked for, a
 * version that cannot tile a shape version 1 tiles refused with Unsupported naming its knob.
 * Outputs are poisoned first. Same adapter policy as the other WebGPU tests;
 * WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { relErr, runOutputs, storedF64, uniformInputs, withTune } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import { type Backend, Unsupported } from "../../bench/backends/backend.ts";
import {
  defaultParams,
  type InputName,
  type Inputs,
  type Mode,
  type OpRequest,
  type Shape,
} from "../../bench/ops.ts";
import { oracle } from "../../kernels/reference/index.ts";
import { laChunk } from "../../kernels/webgpu/la/chunk_fwd.ts";
import { type LaSegPlan, planLaSeg } from "../../kernels/webgpu/la/seg_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu la seg_out/seg_state candidate tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const TOL = { f32: 2e-4, f16: 2e-2, bf16: 2e-2 } as const;
const GRAD_TOL = 3e-2;
/**
 * Candidates and version 1 do the same arithmetic in the same order; on a GPU a compiler may
 * contract or reorder differently, so they agree to f32 roundings, or a storage ulp where an
 * output is stored in 16 bits.
 */
const AGREE = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 } as const;
type Dtype = keyof typeof TOL;

/** One knob setting under test: la.out and la.state (1 = the default passes). */
interface Version {
  name: string;
  tune: { "la.out": number; "la.state": number };
}
const V1: Version = { name: "la.out 1, la.state 1", tune: { "la.out": 1, "la.state": 1 } };
const CANDIDATES: Version[] = [
  { name: "la.out 5", tune: { "la.out": 5, "la.state": 1 } },
  // 8×4 output tiles; steps of 4 and 12 (case 1, case 3 fwd) leave a half O row block.
  { name: "la.out 6", tune: { "la.out": 6, "la.state": 1 } },
  { name: "la.state 3", tune: { "la.out": 1, "la.state": 3 } },
];

interface Case {
  name: string;
  shape: Shape;
  chunk: number;
  /** la.cps, la.sub. */
  tune: Record<string, number>;
  /** Segments per head the plan must make (at least). */
  minSeg: number;
  modes: Mode[];
  /** The (normalize, h0 and z0) pairs run. */
  params: [boolean, boolean][];
}

const CASES: Case[] = [
  {
    name: "K=14, V=10, B=2, T=75, C=8, 3 chunks a segment, steps of 4",
    shape: { B: 2, T: 75, H: 1, K: 14, V: 10, M: 0 },
    chunk: 8,
    tune: { "la.cps": 3, "la.sub": 4 },
    minSeg: 4,
    modes: ["fwd", "fwdbwd"],
    params: [[true, true], [true, false], [false, true], [false, false]],
  },
  {
    // Odd rows: 16-bit q, k, v loaded a word per element. Steps of 128 q and k blocks: la.out 5
    // runs 64 invocations (version 1: 40), two blocks each.
    name: "odd K=31, V=7, H=3, T=100, C=16, 2 chunks a segment, steps of 16",
    shape: { B: 1, T: 100, H: 3, K: 31, V: 7, M: 0 },
    chunk: 16,
    tune: { "la.cps": 2, "la.sub": 16 },
    minSeg: 4,
    modes: ["fwd", "fwdbwd"],
    params: [[true, true], [false, false]],
  },
  {
    // The H100's K4 = V4 = 16 with steps of 12 (lavapipe's 32 KiB), so each segment of 64 tokens
    // ends in a partial step; odd K, which bf16 takes in mode fwd only (dq and dk rows of odd
    // length are refused: packed bf16 pairs).
    name: "odd K=63, V=64, B·H=2, T=200, C=32, 2 chunks a segment, steps of 12",
    shape: { B: 1, T: 200, H: 2, K: 63, V: 64, M: 0 },
    chunk: 32,
    tune: { "la.cps": 2, "la.sub": 12 },
    minSeg: 4,
    modes: ["fwd", "fwdbwd"],
    params: [[true, true], [false, false]],
  },
];

function request(c: Case, mode: Mode, normalize: boolean): OpRequest {
  const params = { ...defaultParams("la", c.shape.K), chunk_size: c.chunk, normalize };
  if (!normalize) params.scale = 0.4;
  return { variant: "la", mode, params, shape: c.shape };
}

function inputs(c: Case, mode: Mode, h0: boolean, seed: number): Inputs {
  const names: InputName[] = ["q", "k", "v", ...(mode === "fwdbwd" ? ["do" as const] : [])];
  if (h0) names.push("h0", "z0");
  return uniformInputs({ variant: "la", mode, shape: c.shape }, seed, {
    names,
    ranges: { z0: [0, 2] },
  });
}

/** The segmented plan the op runs under the current overrides (fwdbwd: its forward's). */
function segPlan(req: OpRequest, dtype: Dtype, limits: DeviceLimits): LaSegPlan | undefined {
  const plan = laChunk.plan(req, dtype, limits);
  if ("seg" in plan) return plan;
  return "fwdSeg" in plan ? plan.fwdSeg : undefined;
}

type Outputs = Record<string, ArrayLike<number>>;

/** Every output of one run under v and the case's tiles, after checking the plan it runs. */
async function run(
  be: Backend,
  c: Case,
  v: Version,
  req: OpRequest,
  x: Inputs,
  dtype: Dtype,
): Promise<Outputs> {
  const tune = { ...c.tune, ...v.tune, ...(req.mode === "fwdbwd" ? { "la.fwd_seg": 2 } : {}) };
  return await withTune(tune, async () => {
    const plan = segPlan(req, dtype, be.info().limits as DeviceLimits);
    assert.ok(plan, "the segmented forward must be planned");
    assert.deepEqual(plan.versions, { out: v.tune["la.out"], state: v.tune["la.state"] });
    assert.ok(plan.NSEG >= c.minSeg, `${plan.NSEG} segments`);
    return await runOutputs(be, req, x, dtype);
  });
}

/** Version 1's outputs by case, mode, dtype, normalize, h0: each computed once. */
const reference = new Map<string, Promise<Outputs>>();

/** v's outputs for every (normalize, h0) of the case, against the oracle and version 1. */
async function check(
  be: Backend,
  c: Case,
  ci: number,
  v: Version,
  mode: Mode,
  dtype: Dtype,
): Promise<void> {
  for (const [normalize, h0] of c.params) {
    const req = request(c, mode, normalize);
    const x = inputs(c, mode, h0, SEED + 7919 * ci + (normalize ? 0 : 2) + (h0 ? 1 : 0));
    const key = [ci, mode, dtype, normalize, h0].join(" ");
    let first = reference.get(key);
    if (!first) reference.set(key, first = run(be, c, V1, req, x, dtype));
    const got = v === V1 ? await first : await run(be, c, v, req, x, dtype);
    const one = await first;
    const stored = storedF64(x, dtype);
    const ref = mode === "fwd"
      ? oracle("la").forward(stored, req.shape, req.params)
      : oracle("la").backward(stored, req.shape, req.params);
    const what = `normalize ${normalize}, h0 ${h0} (WEBGPU_TEST_SEED=${SEED})`;
    for (const [n, out] of Object.entries(got)) {
      const tol = dtype === "f32"
        ? TOL.f32
        : n === "o" || n === "final_state" || n === "final_z"
        ? TOL[dtype]
        : GRAD_TOL;
      const e = relErr(out, ref[n as keyof typeof ref]!);
      assert.ok(e <= tol, `${n} rel err ${e} > ${tol}, ${what}`);
      const d = relErr(out, Float64Array.from(one[n]));
      assert.ok(d <= AGREE[dtype], `${n} differs from version 1 by ${d}, ${what}`);
    }
  }
}

if (backend) {
  const be = backend;
  after(() => be.close());
  const limits = be.info().limits as DeviceLimits;
  const offered = be.impls().find((i) => i.variant === "la" && i.impl === "chunk")!.dtypes;

  describe("webgpu la segmented forward candidates (la.out, la.state)", () => {
    it("la.out and la.state unset are the newest timed that tiles; bad values refused; asked for, never fall back", async () => {
      const c = CASES[0];
      const req = request(c, "fwd", true);
      await withTune(c.tune, () => {
        assert.deepEqual(planLaSeg(req, "f32", limits).versions, { out: 5, state: 3 });
        return Promise.resolve();
      });
      const bad = [["la.out", 7, "1, 5 or 6"], ["la.out", 3, "1, 5 or 6"], [
        "la.state",
        2,
        "1 or 3",
      ]];
      for (const [key, value, list] of bad) {
        await withTune({ [key]: value as number }, () => {
          assert.throws(() => planLaSeg(req, "f32", limits), new RegExp(`${key} must be ${list}`));
          return Promise.resolve();
        });
      }
      // Version 1 fits these limits at steps of 4; the padded rows of 5 and 6 (K=V=16: 80 B
      // more) and their invocations (K=64, V=4: 32 against 16; K=V=16: 20) do not. Unset, the
      // preferred version falls back to 1 there; 6 never runs unasked.
      const small: Shape = { B: 1, T: 64, H: 1, K: 16, V: 16, M: 0 };
      const one = await withTune(
        { "la.sub": 4, "la.out": 1 },
        () => Promise.resolve(planLaSeg({ ...req, shape: small }, "f32", limits)),
      );
      const tight = { ...limits, maxComputeWorkgroupStorageSize: one.shared.out };
      const narrow: Shape = { B: 1, T: 64, H: 1, K: 64, V: 4, M: 0 };
      const few = { ...limits, maxComputeInvocationsPerWorkgroup: 16 };
      const refused = [
        [5, small, tight, 1],
        [5, narrow, few, 1],
        [5, small, few, 1],
        [6, small, tight, 1],
        [6, narrow, few, 1],
        [6, small, few, 1],
      ] as const;
      for (const [out, shape, lim, newest] of refused) {
        await withTune({ "la.out": 1 }, () => {
          assert.equal(planLaSeg({ ...req, shape }, "f32", lim).versions.out, 1);
          return Promise.resolve();
        });
        assert.equal(planLaSeg({ ...req, shape }, "f32", lim).versions.out, newest);
        await withTune({ "la.out": out }, () => {
          assert.throws(() => planLaSeg({ ...req, shape }, "f32", lim), (e) => {
            assert.ok(e instanceof Unsupported, String(e));
            assert.match(e.message, new RegExp(`la\\.out=${out}`));
            return true;
          });
          return Promise.resolve();
        });
      }
    });

    CASES.forEach((c, ci) => {
      for (const mode of c.modes) {
        for (const dtype of ["f32", "f16", "bf16"] as const) {
          const name = (v: Version) => `${v.name} ${mode} ${dtype}: ${c.name}`;
          if (!offered.includes(dtype)) {
            it.skip(`${name(V1)} (this device has no ${dtype} storage)`, () => {});
            continue;
          }
          const oddV = c.shape.V % 2 !== 0;
          if (dtype === "bf16" && (oddV || (mode === "fwdbwd" && c.shape.K % 2 !== 0))) {
            const why = oddV ? /even V/ : /output dq has rows of \d+ elements.*even row length/;
            it(`${mode} bf16 is refused with odd ${oddV ? "V" : "K"}: ${c.name}`, async () => {
              for (const v of CANDIDATES) {
                await withTune({ ...c.tune, ...v.tune, "la.fwd_seg": 2 }, async () => {
                  await assert.rejects(
                    be.prepare(request(c, mode, true), inputs(c, mode, true, SEED), {
                      impl: "chunk",
                      dtype,
                    }),
                    why,
                  );
                });
              }
            });
            continue;
          }
          for (const v of [V1, ...CANDIDATES]) {
            it(name(v), async () => await check(be, c, ci, v, mode, dtype));
          }
        }
      }
    });
  });
}
