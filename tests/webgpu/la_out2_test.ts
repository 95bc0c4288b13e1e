/**
 * la's segmented forward with either version of its state and output passes (`la.state`,
 * `la.out`: 1 = seg_state.wgsl / seg_out.wgsl, 2 = seg_state2.wgsl / seg_out2.wgsl) against the
 * fp64 oracle, in every storage dtype: several segments and steps per segment, T not a multiple
 * of the chunk or the step, B·H > 1, h0 and z0, normalize on and off, K and V not multiples of 4,
 * and version 2's three invocation counts (`la.out_nt`, `la.state_nt`). Same adapter policy as
 * the other WebGPU tests; WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { tunedForwardTests } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import { defaultParams, type Inputs, type OpParams, type Shape } from "../../bench/ops.ts";
import { numel, tensor } from "../../bench/tensor.ts";
import { mulberry32 as rng } from "../../bench/stats.ts";
import { outV2Tiles, planLaSeg } from "../../kernels/webgpu/la/seg_fwd.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";

const backend = await webgpuOrReport("webgpu la output-pass tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));

interface Case {
  name: string;
  shape: Shape;
  params: Partial<OpParams>;
  /** LAB_WEBGPU_TUNE overrides (la.out, la.out_nt, la.cps, la.sub). */
  tune: Record<string, number>;
  h0: boolean;
  z0: boolean;
}

const BASE: Omit<Case, "tune">[] = [
  {
    name: "K=V=64, T=300 C=64 in segments of 2 chunks, B·H=2, h0+z0",
    shape: { B: 1, T: 300, H: 2, K: 64, V: 64, M: 0 },
    params: { chunk_size: 64 },
    h0: true,
    z0: true,
  },
  {
    name: "K=16 V=12, T=150 C=16 in segments of 3 chunks, B·H=4, normalize=false, h0",
    shape: { B: 2, T: 150, H: 2, K: 16, V: 12, M: 0 },
    params: { chunk_size: 16, normalize: false, scale: 0.7 },
    h0: true,
    z0: false,
  },
  {
    name: "odd K=13, V=10, T=29 C=8, one segment, B·H=3, z0 only",
    shape: { B: 1, T: 29, H: 3, K: 13, V: 10, M: 0 },
    params: { chunk_size: 8 },
    h0: false,
    z0: true,
  },
];
const CPS = [2, 3, 4];

const CASES: Case[] = [
  ...[1, 2].flatMap((out) =>
    BASE.map((c, i) => ({
      ...c,
      name: `la.out=la.state=${out}: ${c.name}`,
      tune: { "la.out": out, "la.state": out, "la.cps": CPS[i] },
    }))
  ),
  {
    ...BASE[0],
    name: "la.out=la.state=2, 64 invocations, L=12, TT=7: K=V=64, T=300, normalize=false, h0",
    params: { chunk_size: 64, normalize: false, scale: 0.3 },
    z0: false,
    tune: {
      "la.out": 2,
      "la.out_nt": 64,
      "la.state_nt": 64,
      "la.cps": 2,
      "la.sub": 12,
      "la.tt": 7,
    },
  },
  {
    ...BASE[1],
    name: "la.out=la.state=2, 256 invocations, L=8, TT=5: K=16 V=12, T=150, normalize, h0+z0",
    params: { chunk_size: 16 },
    z0: true,
    tune: {
      "la.out": 2,
      "la.out_nt": 256,
      "la.state_nt": 256,
      "la.cps": 3,
      "la.sub": 8,
      "la.tt": 5,
    },
  },
];

function makeInputs(c: Case, seed: number): Inputs {
  const r = rng(seed);
  const { B, T, H, K, V } = c.shape;
  const rand = (shape: number[], lo: number, hi: number) => {
    const d = new Float32Array(numel(shape));
    for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * r();
    return tensor("f32", shape, d);
  };
  const inputs: Inputs = {
    q: rand([B, T, H, K], -1, 1),
    k: rand([B, T, H, K], -1, 1),
    v: rand([B, T, H, V], -1, 1),
  };
  if (c.h0) inputs.h0 = rand([B, H, K, V], -1, 1);
  if (c.z0) inputs.z0 = rand([B, H, K], 0, 2);
  return inputs;
}

describe("seg_out2 tiles (no device)", () => {
  it("tile every invocation count at L = 4 … 32", () => {
    for (const NT of [64, 128, 256]) {
      for (let L = 4; L <= 32; L += 4) {
        const t = outV2Tiles(L, NT);
        assert.ok(t, `L=${L} NT=${NT}`);
        assert.equal((64 / t.SR) * (16 / t.SC4), NT);
        assert.ok((L / t.OR) * (16 / t.OC4) <= NT && L % t.OR === 0);
        assert.ok((L / t.AR) * (L / 4 / t.AC4) <= NT && L % t.AR === 0);
        assert.ok(t.PF * NT >= L * 16);
      }
    }
    assert.equal(outV2Tiles(32, 100), undefined);
  });
});

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu la segmented forward, both output passes, vs fp64 oracle", () => {
    tunedForwardTests(be, "la", CASES, {
      seed: SEED,
      request: (c) => ({
        variant: "la",
        mode: "fwd",
        params: { ...defaultParams("la", c.shape.K), ...c.params },
        shape: c.shape,
      }),
      inputs: makeInputs,
      // The case must take the segmented path with the output pass it names.
      checkPlan: (c, req, dtype) => {
        const plan = planLaSeg(req, dtype, be.info().limits as DeviceLimits);
        assert.equal(plan.outVersion, c.tune["la.out"]);
        assert.equal(plan.stateVersion, c.tune["la.state"] ?? 2);
        if (plan.out2) assert.equal(plan.out2.NT, c.tune["la.out_nt"] ?? 128);
        if (plan.state2) assert.equal(plan.state2.NT, c.tune["la.state_nt"] ?? 128);
        assert.ok(plan.NSEG > 1 || c.shape.T <= plan.cps * plan.C);
      },
    });
  });
}
