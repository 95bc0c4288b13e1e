/**
 * The second token kernel of softmax/flash and rmt/chunk (`<variant>.tok` = 2,
 * kernels/webgpu/rmt/tokens2.wgsl) against the fp64 oracle and against kernel 1
 * (segment.wgsl's token branch), in every storage dtype: softmax with T not a multiple of the
 * query block or key tile and B·H > 1; rmt with several segments, a partial last segment (and
 * query blocks past its end), L not a multiple of 64, M = 1, 5, 16 and 37 (memory rows over two
 * key tiles); D = 64 and D = 38 (not a multiple of 4), query blocks of 64 and 32 (lavapipe's
 * 32 KiB of workgroup memory takes D = 64 at 32 only); and with the second memory kernel
 * (rmt.mem = 2) feeding the memory slots. Outputs are poisoned with NaN first, so
 * an unwritten row fails. Same adapter policy as the other WebGPU tests; WEBGPU_TEST_SEED=<n>
 * replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { relErr, storedF64, uniformInputs, withTune } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import { type Backend, Unsupported } from "../../bench/backends/backend.ts";
import { defaultParams, type Inputs, type OpRequest, type Shape } from "../../bench/ops.ts";

import { oracle } from "../../kernels/reference/index.ts";
import type { DeviceLimits } from "../../kernels/webgpu/kernel.ts";
import { planSegments } from "../../kernels/webgpu/rmt/rmt_fwd.ts";
import { tokens2Bytes } from "../../kernels/webgpu/rmt/tokens2.ts";

const backend = await webgpuOrReport("webgpu token kernel 2 (softmax.tok, rmt.tok) tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const TOL = { f32: 2e-4, f16: 2e-2, bf16: 2e-2 } as const;
/** Kernels 1 and 2 compute the same f32 sums in another order; 16-bit outputs may differ by an ulp. */
const AGREE = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 } as const;

interface Case {
  name: string;
  variant: "softmax" | "rmt";
  shape: Shape;
  L?: number;
  tune?: Record<string, number>;
}

const CASES: Case[] = [
  { name: "T=200, B·H=2, D=64", variant: "softmax", shape: sh(1, 200, 2, 64, 0) },
  { name: "T=333, B·H=2, D=38", variant: "softmax", shape: sh(2, 333, 1, 38, 0) },
  {
    name: "T=333, D=38, blocks of 32",
    variant: "softmax",
    shape: sh(1, 333, 2, 38, 0),
    tune: { "softmax.tok_bq": 32 },
  },
  { name: "L=70 (70+70+60), M=1, D=64", variant: "rmt", shape: sh(1, 200, 2, 64, 1), L: 70 },
  { name: "L=100 (3×100+33), M=5, D=38", variant: "rmt", shape: sh(2, 333, 1, 38, 5), L: 100 },
  { name: "L=130 (130+130+40), M=16, D=64", variant: "rmt", shape: sh(1, 300, 2, 64, 16), L: 130 },
  { name: "L=50 (4×50+21), M=37, D=38", variant: "rmt", shape: sh(1, 221, 2, 38, 37), L: 50 },
  {
    name: "L=130, M=16, D=64, memory pass rmt.mem 2",
    variant: "rmt",
    shape: sh(1, 300, 2, 64, 16),
    L: 130,
    tune: { "rmt.mem": 2 },
  },
];

function sh(B: number, T: number, H: number, D: number, M: number): Shape {
  return { B, T, H, K: D, V: D, M };
}

function request(c: Case): OpRequest {
  const params = defaultParams(c.variant, c.shape.K);
  if (c.L) params.segment_len = c.L;
  return { variant: c.variant, mode: "fwd", params, shape: c.shape };
}

/** The query block kernel 2 should plan on this adapter. */
function expectedBQ(c: Case, limits: DeviceLimits): number {
  const want = c.tune?.[`${c.variant}.tok_bq`] ?? 64;
  return want === 64 && tokens2Bytes(64, c.shape.K) <= limits.maxComputeWorkgroupStorageSize
    ? 64
    : 32;
}

const impl = (c: Case) => (c.variant === "softmax" ? "flash" : "chunk");

/** One poisoned forward under token kernel `tok`: every output, read back as f32. */
async function run(
  be: Backend,
  c: Case,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
  tok: 1 | 2,
): Promise<Record<string, Float32Array>> {
  const req = request(c);
  return await withTune({ ...c.tune, [`${c.variant}.tok`]: tok }, async () => {
    const plan = planSegments(req, dtype, be.info().limits as DeviceLimits);
    assert.deepEqual(
      plan.tokens,
      tok === 1 ? { tok: 1 } : { tok: 2, BQ: expectedBQ(c, be.info().limits as DeviceLimits) },
    );
    const op = await be.prepare(req, x, { impl: impl(c), dtype });
    try {
      await op.poison();
      await op.run();
      const out = await op.read();
      const res: Record<string, Float32Array> = {};
      for (const [n, t] of Object.entries(out)) res[n] = Float32Array.from(t!.data);
      return res;
    } finally {
      op.dispose();
    }
  });
}

if (backend) {
  const be = backend;
  after(() => be.close());
  const limits = be.info().limits as DeviceLimits;

  describe("webgpu token kernel 2 (tokens2.wgsl) planning", () => {
    const c = CASES[0];
    it("unset, 2 where it tiles, else 1; only 1 or 2; tok_bq only 32 or 64", async () => {
      assert.equal(planSegments(request(c), "f32", limits).tokens.tok, 2);
      const wide: Case = { ...c, shape: sh(1, 100, 1, 80, 0) };
      assert.deepEqual(planSegments(request(wide), "f32", limits).tokens, { tok: 1 });
      await withTune({ "softmax.tok": 3 }, () => {
        assert.throws(() => planSegments(request(c), "f32", limits), /1 or 2/);
        return Promise.resolve();
      });
      await withTune({ "softmax.tok": 2, "softmax.tok_bq": 48 }, () => {
        assert.throws(() => planSegments(request(c), "f32", limits), /32 or 64/);
        return Promise.resolve();
      });
      // rmt's knob does not touch softmax, and the other way round.
      await withTune({ "rmt.tok": 1 }, () => {
        assert.equal(planSegments(request(c), "f32", limits).tokens.tok, 2);
        assert.deepEqual(planSegments(request(CASES[3]), "f32", limits).tokens, { tok: 1 });
        return Promise.resolve();
      });
      await withTune({ "softmax.tok": 1 }, () => {
        assert.deepEqual(planSegments(request(c), "f32", limits).tokens, { tok: 1 });
        assert.equal(planSegments(request(CASES[3]), "f32", limits).tokens.tok, 2);
        return Promise.resolve();
      });
    });
    it("refuses with Unsupported what it cannot tile, never falls back to 1", async () => {
      await withTune({ "softmax.tok": 2, "rmt.tok": 2 }, () => {
        const wide: Case = { ...c, shape: sh(1, 100, 1, 80, 0) };
        assert.throws(
          () => planSegments(request(wide), "f32", limits),
          (e: Error) => e instanceof Unsupported && /D=80 above 64/.test(e.message),
        );
        const small = { ...limits, maxComputeWorkgroupStorageSize: 16384 };
        assert.throws(
          () => planSegments(request(c), "f32", small),
          (e: Error) => e instanceof Unsupported && /workgroup memory/.test(e.message),
        );
        // H100 (48 KiB): D = 64 in blocks of 64; lavapipe (32 KiB): 32.
        const h100 = { ...limits, maxComputeWorkgroupStorageSize: 49152 };
        assert.deepEqual(planSegments(request(c), "f32", h100).tokens, { tok: 2, BQ: 64 });
        const lvp = { ...limits, maxComputeWorkgroupStorageSize: 32768 };
        assert.deepEqual(planSegments(request(c), "f32", lvp).tokens, { tok: 2, BQ: 32 });
        return Promise.resolve();
      });
    });
  });

  describe("webgpu token kernel 2 vs fp64 oracle and kernel 1", () => {
    CASES.forEach((c, ci) => {
      const offered = be.impls().find((i) => i.variant === c.variant && i.impl === impl(c));
      for (const dtype of ["f32", "f16", "bf16"] as const) {
        const name = `${c.variant} ${c.name}${c.tune ? " " + JSON.stringify(c.tune) : ""} ${dtype}`;
        if (!offered?.dtypes.includes(dtype)) {
          it.skip(`${name} (this device has no ${dtype} storage)`, () => {});
          continue;
        }
        it(name, async () => {
          const req = request(c);
          const seed = SEED + 7919 * ci;
          const x = uniformInputs(req, seed);
          const two = await run(be, c, x, dtype, 2);
          const one = await run(be, c, x, dtype, 1);
          const ref = oracle(c.variant).forward(storedF64(x, dtype), req.shape, req.params);
          const names = c.variant === "rmt" ? ["final_state", "o"] : ["o"];
          assert.deepEqual(Object.keys(two).sort(), names);
          const replay = `WEBGPU_TEST_SEED=${SEED}`;
          for (const n of names) {
            const e = relErr(two[n], ref[n as "o"]!);
            assert.ok(e <= TOL[dtype], `${n} rel err ${e} > ${TOL[dtype]} vs oracle (${replay})`);
            const a = relErr(two[n], Float64Array.from(one[n]));
            assert.ok(
              a <= AGREE[dtype],
              `${n} rel diff ${a} > ${AGREE[dtype]} vs tok 1 (${replay})`,
            );
          }
        });
      }
    });
  });
}
