/**
 * The versions of la's segmented forward passes (kernels/webgpu/la/seg_fwd.ts) above 1: `la.out`
 * 5 (seg_out5.wgsl) and `la.state` 3 (seg_state3.wgsl), fwdbwd's defaults, each
 * against the fp64 oracle and against version 1 (`la.out` = `la.state` = 1), in every storage
 * dtype, with normalize on and off, with and without h0/z0, in mode fwd and in fwdbwd with the
 * segmented forward (`la.fwd_seg` = 2, seg_out's STATES; every gradient checked, as the backward
 * reads the per-chunk states the walk leaves). Shapes: several segments per head with T not a
 * multiple of the step, chunk or segment, B·H > 1, odd K, odd V (bf16 refuses it), steps shorter
 * than a chunk, two prefetched blocks per invocation and more invocations than version 1, and
 * K = V = 64. The chunk-parallel pairs `la.out` 8 or 9 + `la.state` 4 (chunk_out8.wgsl,
 * chunk_out9.wgsl, seg_state3.wgsl with SUB; mode fwd only, where they are the default) are
 * checked the same way against the oracle and against fwdbwd's defaults (la.out 5, la.state 3),
 * with sub-chunks (`la.cs_len`) not dividing T or the segment, several state tiles per sub-chunk,
 * bf16 with its sub-chunk states in bf16 and in f32 (`la.cs_f32`), G = `la.out_g` sub-chunks a
 * workgroup unset (16, clamped to the sub-chunks of a segment), 1, 2 and 3 (not dividing them in
 * most cases), and with its workspace alone forcing a head-group split. Also the knobs' rules:
 * unset, the newest version that tiles (in mode fwd 9 and 4, with G = 16 and TT = 16; 5 and 3 with fwdbwd's states, 1 where neither tiles); bad and deleted
 * values refused (la.out 6 lost its A/B, 7 was subsumed by 8); asked for, a version that cannot
 * tile a shape version 1 tiles refused with Unsupported naming its knob; la.out 8 or 9 and
 * la.state 4 refused one without the other and in fwdbwd;
 * la.out_g a positive integer. Outputs are poisoned first. Same adapter policy
 * as the other WebGPU tests; WEBGPU_TEST_SEED=<n> replays.
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

/**
 * One knob setting under test: la.out and la.state (1 = the default passes), la.cs_f32; checked
 * against `ref` (default V1), in mode fwd only where `fwdOnly`, in bf16 only where `bf16Only`.
 */
interface Version {
  name: string;
  tune: { "la.out": number; "la.state": number; "la.cs_f32"?: number; "la.out_g"?: number };
  ref?: Version;
  fwdOnly?: boolean;
  bf16Only?: boolean;
}
const V1: Version = { name: "la.out 1, la.state 1", tune: { "la.out": 1, "la.state": 1 } };
const DEFAULTS: Version = { name: "la.out 5, la.state 3", tune: { "la.out": 5, "la.state": 3 } };
const SPLIT = { "la.out": 8, "la.state": 4 };
const CANDIDATES: Version[] = [
  { name: "la.out 5", tune: { "la.out": 5, "la.state": 1 } },
  { name: "la.state 3", tune: { "la.out": 1, "la.state": 3 } },
  // la.out 8 and 9 (9: 8's sub-chunk loop on two O groups splitting the depth), each: sub-chunk
  // states in bf16 for bf16 inputs (f32 for f32 and f16); G unset: 16, clamped to NSUB (a whole
  // segment a workgroup in every case here); G = 1 (only the prefix in registers, nothing
  // prefetched); NSUB = 3, 3, 4 in the cases: G = 2 leaves short last groups in the first two,
  // 3 in the third.
  ...[8, 9].flatMap((out): Version[] => {
    const split = { "la.out": out, "la.state": 4 };
    const v = (tune: Version["tune"], bf16Only = false): Version => ({
      name: Object.entries(tune).map(([k, x]) => `${k} ${x}`).join(", "),
      tune,
      ref: DEFAULTS,
      fwdOnly: true,
      bf16Only,
    });
    return [
      v(split),
      v({ ...split, "la.cs_f32": 1 }, true),
      v({ ...split, "la.out_g": 1 }),
      v({ ...split, "la.out_g": 2 }),
      v({ ...split, "la.out_g": 3 }),
      v({ ...split, "la.out_g": 2, "la.cs_f32": 1 }, true),
    ];
  }),
];

interface Case {
  name: string;
  shape: Shape;
  chunk: number;
  /** la.cps, la.sub (la.out 1 and 5), la.cs_len (la.out 8), la.tt. */
  tune: Record<string, number>;
  /** Segments per head the plan must make (at least). */
  minSeg: number;
  modes: Mode[];
  /** The (normalize, h0 and z0) pairs run. */
  params: [boolean, boolean][];
}

const CASES: Case[] = [
  {
    // la.out 8: sub-chunks of 8, 3 a segment; the last segment is 3 tokens.
    name: "K=14, V=10, B=2, T=75, C=8, 3 chunks a segment, steps of 4, sub-chunks of 8",
    shape: { B: 2, T: 75, H: 1, K: 14, V: 10, M: 0 },
    chunk: 8,
    tune: { "la.cps": 3, "la.sub": 4, "la.cs_len": 8 },
    minSeg: 4,
    modes: ["fwd", "fwdbwd"],
    params: [[true, true], [true, false], [false, true], [false, false]],
  },
  {
    // Odd rows: 16-bit q, k, v loaded a word per element. Steps of 128 q and k blocks: la.out 5
    // runs 64 invocations (version 1: 40), two blocks each.
    // la.out 8: sub-chunks of 12 (12, 12, 8 a segment of 32), each summed in 3 state tiles of 4.
    name: "odd K=31, V=7, H=3, T=100, C=16, 2 chunks a segment, steps of 16, sub-chunks of 12",
    shape: { B: 1, T: 100, H: 3, K: 31, V: 7, M: 0 },
    chunk: 16,
    tune: { "la.cps": 2, "la.sub": 16, "la.cs_len": 12, "la.tt": 4 },
    minSeg: 4,
    modes: ["fwd", "fwdbwd"],
    params: [[true, true], [false, false]],
  },
  {
    // The H100's K4 = V4 = 16 with steps of 12 (lavapipe's 32 KiB), so each segment of 64 tokens
    // ends in a partial step; odd K, which bf16 takes in mode fwd only (dq and dk rows of odd
    // length are refused: packed bf16 pairs).
    // la.out 8: sub-chunks of 16 (lavapipe's 32 KiB fit 16 at K4 = V4 = 16), the last segment 8
    // tokens.
    name: "odd K=63, V=64, B·H=2, T=200, C=32, 2 chunks a segment, steps of 12, sub-chunks of 16",
    shape: { B: 1, T: 200, H: 2, K: 63, V: 64, M: 0 },
    chunk: 32,
    tune: { "la.cps": 2, "la.sub": 12, "la.cs_len": 16 },
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
    if (plan.cs) {
      assert.equal(plan.out.L, c.tune["la.cs_len"]);
      assert.ok(plan.cs.NSUB > 1, `${plan.cs.NSUB} sub-chunks a segment`);
      assert.equal(plan.cs.f32, dtype !== "bf16" || v.tune["la.cs_f32"] === 1);
      const G = v.tune["la.out"] >= 8
        ? Math.min(v.tune["la.out_g"] ?? 16, plan.cs.NSUB)
        : undefined;
      assert.equal(plan.cs.G, G);
    }
    return await runOutputs(be, req, x, dtype);
  });
}

/** Reference versions' outputs by version, case, mode, dtype, normalize, h0: each computed once. */
const reference = new Map<string, Promise<Outputs>>();

/** v's outputs for every (normalize, h0) of the case, against the oracle and v.ref (V1). */
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
    const refV = v.ref ?? V1;
    const key = [refV.name, ci, mode, dtype, normalize, h0].join(" ");
    let first = reference.get(key);
    if (!first) reference.set(key, first = run(be, c, refV, req, x, dtype));
    const got = v === refV ? await first : await run(be, c, v, req, x, dtype);
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
      assert.ok(d <= AGREE[dtype], `${n} differs from ${refV.name} by ${d}, ${what}`);
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
        for (const dtype of ["f32", "f16", "bf16"] as const) {
          assert.deepEqual(planLaSeg(req, dtype, limits).versions, { out: 9, state: 4 });
        }
        const fwdbwd = request(c, "fwdbwd", true);
        assert.deepEqual(planLaSeg(fwdbwd, "f32", limits, true).versions, { out: 5, state: 3 });
        return Promise.resolve();
      });
      const bad = [
        ["la.out", 10, "1, 5, 8 or 9"],
        ["la.out", 7, "1, 5, 8 or 9"],
        ["la.state", 2, "1, 3 or 4"],
      ] as const;
      for (const [key, value, list] of bad) {
        await withTune({ [key]: value }, () => {
          assert.throws(() => planLaSeg(req, "f32", limits), new RegExp(`${key} must be ${list}`));
          return Promise.resolve();
        });
      }
      // Version 1 fits these limits at steps of 4; the padded rows of 5 and 8 (K=V=16: 80 B
      // more) and their invocations (K=64, V=4: 32 against 16; K=V=16: 20 for 5) do not. Unset,
      // the newest version that fits runs.
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
        // 8 and 9 update no state, so their invocations fit 16 at K = V = 16 (9 at sub-chunks of
        // 4): unset, 9 runs there.
        [5, small, few, 9],
        [8, small, tight, 1],
        [8, narrow, few, 1],
        [9, small, tight, 1],
        [9, narrow, few, 1],
      ] as const;
      for (const [out, shape, lim, newest] of refused) {
        await withTune({ "la.out": 1 }, () => {
          assert.equal(planLaSeg({ ...req, shape }, "f32", lim).versions.out, 1);
          return Promise.resolve();
        });
        assert.equal(planLaSeg({ ...req, shape }, "f32", lim).versions.out, newest);
        await withTune(out >= 8 ? { "la.out": out, "la.state": 4 } : { "la.out": out }, () => {
          assert.throws(() => planLaSeg({ ...req, shape }, "f32", lim), (e) => {
            assert.ok(e instanceof Unsupported, String(e));
            assert.match(e.message, new RegExp(`la\\.out=${out}`));
            return true;
          });
          return Promise.resolve();
        });
      }
    });

    it("la.out 8 and la.state 4 run only together, in mode fwd; wsc sized per sub-chunk", async () => {
      const c = CASES[0];
      const req = request(c, "fwd", true);
      const unsupported = (re: RegExp) => (e: unknown) => {
        assert.ok(e instanceof Unsupported, String(e));
        assert.match(e.message, re);
        return true;
      };
      const pairs = [
        [{ "la.out": 8, "la.state": 3 }, /la\.out=8, la\.state=3$/],
        [{ "la.out": 5, "la.state": 4 }, /la\.out=5, la\.state=4$/],
      ] as const;
      for (const [tune, re] of pairs) {
        await withTune({ ...c.tune, ...tune }, () => {
          assert.throws(
            () => planLaSeg(req, "f32", limits),
            unsupported(/la\.out=8 or 9 and la\.state=4/),
          );
          assert.throws(() => planLaSeg(req, "f32", limits), unsupported(re));
          // The op's planner does not hand the asked names to the per-chunk passes either.
          assert.throws(() => laChunk.plan(req, "f32", limits), unsupported(re));
          return Promise.resolve();
        });
      }
      // One knob asked for brings its partner when the other is unset.
      const partners = [
        [{ "la.out": 8 }, { out: 8, state: 4 }],
        [{ "la.out": 9 }, { out: 9, state: 4 }],
        [{ "la.state": 4 }, { out: 9, state: 4 }],
        [{ "la.out": 5 }, { out: 5, state: 3 }],
        [{ "la.state": 3 }, { out: 5, state: 3 }],
      ] as const;
      for (const [tune, versions] of partners) {
        await withTune({ ...c.tune, ...tune }, () => {
          assert.deepEqual(planLaSeg(req, "f32", limits).versions, versions);
          return Promise.resolve();
        });
      }
      await withTune({ ...c.tune, ...SPLIT }, () => {
        const fwdbwd = request(c, "fwdbwd", true);
        assert.throws(
          () => planLaSeg(fwdbwd, "f32", limits, true),
          unsupported(/la\.out=8, la\.state=4 run in mode fwd only/),
        );
        return Promise.resolve();
      });
      // la.out_g: a positive integer, read by la.out 8 alone; unset, 16.
      for (const g of [0, -1, 2.5]) {
        await withTune({ ...c.tune, ...SPLIT, "la.out_g": g }, () => {
          assert.throws(
            () => planLaSeg(req, "f32", limits),
            /la\.out_g must be a positive integer/,
          );
          return Promise.resolve();
        });
      }
      // G: la.out_g, or null for the default (16, at most the case's 3 sub-chunks a segment).
      const unset: [Record<string, number>, number, number | null | undefined][] = [
        [{ "la.out_g": 2 }, 9, 2],
        [{ "la.out_g": 2, "la.state": 4 }, 9, 2],
        [{ "la.out_g": 2, "la.out": 8 }, 8, 2],
        [{}, 9, null],
        [{ "la.out_g": 2, "la.out": 5, "la.state": 3 }, 5, undefined],
      ];
      for (const [tune, out, G] of unset) {
        await withTune({ ...c.tune, ...tune }, () => {
          const plan = planLaSeg(req, "f32", limits);
          assert.deepEqual(plan.versions, { out, state: out >= 8 ? 4 : 3 });
          assert.equal(plan.cs?.G, G === null ? Math.min(16, plan.cs!.NSUB) : G);
          return Promise.resolve();
        });
      }
      await withTune({ ...c.tune, ...SPLIT, "la.cs_f32": 2 }, () => {
        assert.throws(() => planLaSeg(req, "bf16", limits), /la\.cs_f32 must be 1/);
        return Promise.resolve();
      });
      // T = 75, segments of 24 (4, the last of 3 tokens), sub-chunks of 8: 3 a segment, 2 stored;
      // K4 = 4, V4 = 3: 4·4·3 + 4 = 52 vec4s each; B·H = 2. la.tt 5 → the largest divisor of 8.
      for (
        const [dtype, f32, bytes] of [["f32", {}, 16], ["bf16", {}, 8], [
          "bf16",
          { "la.cs_f32": 1 },
          16,
        ]] as const
      ) {
        await withTune({ ...c.tune, ...SPLIT, ...f32, "la.tt": 5 }, () => {
          const plan = planLaSeg(req, dtype, limits);
          assert.deepEqual(plan.cs, { NSUB: 3, SLOT: 52, f32: bytes === 16, G: 3 });
          assert.equal(plan.state.TT, 4);
          assert.equal(plan.workspace.wsc, 2 * 4 * 2 * 52 * bytes);
          return Promise.resolve();
        });
      }
      // The H100 at 1M, H8, K = V = 64 (docs/perf-notes.md): 8 heads' bf16 wsc (cps 64) is above
      // one binding (2^31 − 1 bytes), 4 heads' (cps 32) fit, so the backend runs 2 head groups;
      // f32 states fit 4 heads too (2 groups, as f32 q needs anyway).
      const h100: DeviceLimits = {
        maxComputeWorkgroupStorageSize: 49152,
        maxComputeInvocationsPerWorkgroup: 1024,
        maxComputeWorkgroupSizeX: 1024,
        maxComputeWorkgroupsPerDimension: 65535,
        maxStorageBufferBindingSize: 2 ** 31 - 1,
        maxBufferSize: 2 ** 32 - 1,
      };
      const big = (H: number): OpRequest => ({
        ...req,
        params: defaultParams("la", 64),
        shape: { B: 1, T: 2 ** 20, H, K: 64, V: 64, M: 0 },
      });
      await withTune(SPLIT, () => {
        const at = (H: number, dtype: Dtype) => planLaSeg(big(H), dtype, h100);
        const whole = at(8, "bf16");
        // la.state 4 tiles 16 tokens unless la.tt says otherwise (faster on the H100), with 8×4
        // state tiles (128 invocations); segments aim at 1024 state-pass workgroups.
        assert.deepEqual([whole.cps, whole.out.L, whole.state.TT, whole.out.NT], [
          128,
          32,
          16,
          256,
        ]);
        assert.deepEqual([whole.state.NT, whole.state.RB], [128, 2]);
        assert.equal(whole.shared.out, 46592);
        assert.equal(whole.workspace.wsc, 2172518400);
        assert.equal(at(4, "bf16").cps, 64);
        assert.equal(at(4, "bf16").workspace.wsc, 1081999360);
        assert.equal(at(8, "f32").workspace.wsc, 4345036800);
        assert.equal(at(4, "f32").workspace.wsc, 2163998720);
        return Promise.resolve();
      });
      // la.out 8: 256 invocations, 9: 416 (two O groups of 128, 128 A, 32 D); both 45.5 KiB of
      // workgroup memory, 16 sub-chunks a workgroup unless la.out_g says otherwise, at most NSUB
      // (256 here).
      for (
        const [out, g, G] of [[8, undefined, 16], [8, 3, 3], [8, 1000, 256], [9, undefined, 16], [
          9,
          3,
          3,
        ]] as const
      ) {
        await withTune({ "la.out": out, "la.state": 4, ...(g ? { "la.out_g": g } : {}) }, () => {
          const plan = planLaSeg(big(8), "bf16", h100);
          const NT = out === 8 ? 256 : 416;
          assert.deepEqual([plan.out.L, plan.out.NT, plan.shared.out], [32, NT, 46592]);
          assert.deepEqual(plan.cs, { NSUB: 256, SLOT: 1040, f32: false, G });
          return Promise.resolve();
        });
      }
    });

    it("splits heads into groups when wsc alone exceeds a binding", async () => {
      // K = 8, V = 16, sub-chunks of 4: per head 4 segments × 3 stored × 34 vec4s × 16 B = 6528
      // B of wsc, against 4096 B of v and o: a 10,000 B binding holds 2 heads of every tensor
      // but 1 of wsc, so la.out 8 runs 4 groups (la.out 5, la.state 3: 2).
      const split = await openWebGpu({ bindingLimit: 10000 });
      try {
        const c: Case = {
          name: "head groups",
          shape: { B: 1, T: 64, H: 4, K: 8, V: 16, M: 0 },
          chunk: 8,
          tune: { "la.cps": 2, "la.cs_len": 4 },
          minSeg: 4,
          modes: ["fwd"],
          params: [],
        };
        const req = request(c, "fwd", true);
        const x = inputs(c, "fwd", true, SEED + 17);
        const groups = (n: number) => (op: unknown) =>
          assert.equal((op as { groups: number }).groups, n);
        const got = await withTune(
          { ...c.tune, ...SPLIT },
          () => runOutputs(split, req, x, "f32", { inspect: groups(4) }),
        );
        const five = await withTune(
          { ...c.tune, ...DEFAULTS.tune },
          () => runOutputs(split, req, x, "f32", { inspect: groups(2) }),
        );
        const ref = oracle("la").forward(storedF64(x, "f32"), req.shape, req.params);
        for (const [n, out] of Object.entries(got)) {
          const e = relErr(out, ref[n as keyof typeof ref]!);
          assert.ok(e <= TOL.f32, `${n} rel err ${e} (WEBGPU_TEST_SEED=${SEED})`);
          const d = relErr(out, Float64Array.from(five[n]));
          assert.ok(
            d <= AGREE.f32,
            `${n} differs from la.out 5 by ${d} (WEBGPU_TEST_SEED=${SEED})`,
          );
        }
      } finally {
        split.close();
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
              for (const v of CANDIDATES.filter((v) => !(v.fwdOnly && mode !== "fwd"))) {
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
            if ((v.fwdOnly && mode !== "fwd") || (v.bf16Only && dtype !== "bf16")) continue;
            it(name(v), async () => await check(be, c, ci, v, mode, dtype));
          }
        }
      }
    });
  });
}
