/**
 * The tiled per-chunk backward of la and gla (mode fwdbwd; kernels/webgpu/la/bwd_*.wgsl,
 * gla/bwd_*.wgsl) against the fp64 oracle, on the edges of its 4×4 tiles and slabs: C, K, V not
 * multiples of 4 (C = T < chunk_size included), several key, value and token slabs with partial
 * last ones, normalize off for la, strong and zero gates for gla, with and without h0 (and z0),
 * in every storage dtype. Same adapter policy as the other WebGPU tests; WEBGPU_TEST_SEED=<n>
 * replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { relErr, uniformInputs } from "./compare.ts";
import { scopeTune } from "../../kernels/webgpu/kernel.ts";
import { webgpuOrReport } from "./adapter.ts";
import {
  defaultParams,
  type InputName,
  type Inputs,
  type OpParams,
  type OpRequest,
  outputShapes,
  type Shape,
  type Variant,
} from "../../bench/ops.ts";
import { cast, type Tensor, toF64 } from "../../bench/tensor.ts";
import { oracle } from "../../kernels/reference/index.ts";

const backend = await webgpuOrReport("webgpu la/gla chunked backward tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const TOL = { f32: 2e-4, f16: 2e-2, bf16: 2e-2 };
const GRAD_TOL = 3e-2;

interface Case {
  name: string;
  variant: Variant;
  shape: Shape;
  params: Partial<OpParams>;
  /** Range of the gates (gla). */
  gates?: [number, number];
  /** Whether h0 (and z0 for la) are given. */
  h0: boolean;
  /**
   * dg's tolerance where it is looser: with strong gates dg is a sum of q⊙dq − k⊙dk, O(1) terms
   * cancelling to an O(e⁻⁹) result, so f32 keeps only about 1e-3 of it (the chunked form itself,
   * not the tiling: the previous kernels measured 1.6e-3).
   */
  dgTol?: number;
  /** LAB_WEBGPU_TUNE overrides (`<variant>.bwd_d`: slab depth). */
  tune?: Record<string, number>;
}

const CASES: Case[] = [
  {
    name: "K, V, C not multiples of 4, 4 chunks, partial last",
    variant: "la",
    shape: { B: 2, T: 39, H: 1, K: 10, V: 6, M: 0 },
    params: { chunk_size: 10 },
    h0: true,
  },
  {
    name: "one chunk shorter than chunk_size (C = T = 5)",
    variant: "la",
    shape: { B: 1, T: 5, H: 3, K: 8, V: 8, M: 0 },
    params: { chunk_size: 16 },
    h0: true,
  },
  {
    name: "several key, value and token slabs, partial last ones",
    variant: "la",
    shape: { B: 1, T: 61, H: 2, K: 40, V: 36, M: 0 },
    params: { chunk_size: 24 },
    h0: true,
    tune: { "la.bwd_d": 8 },
  },
  {
    name: "normalize off, odd sizes, no h0",
    variant: "la",
    shape: { B: 1, T: 30, H: 2, K: 10, V: 6, M: 0 },
    params: { chunk_size: 7, normalize: false, scale: 0.3 },
    h0: false,
  },
  {
    name: "19 chunks: the suffix scan's batches of loads and their remainder",
    variant: "la",
    shape: { B: 1, T: 150, H: 2, K: 16, V: 12, M: 0 },
    params: { chunk_size: 8 },
    h0: true,
  },
  {
    name: "19 chunks: the suffix scan's batches of loads and their remainder",
    variant: "gla",
    shape: { B: 1, T: 150, H: 2, K: 16, V: 12, M: 0 },
    params: { chunk_size: 8 },
    gates: [-0.6, 0],
    h0: true,
  },
  {
    name: "default tiles: C = K = V = 64, partial last chunk",
    variant: "la",
    shape: { B: 1, T: 150, H: 1, K: 64, V: 64, M: 0 },
    params: { chunk_size: 64 },
    h0: true,
  },
  {
    name: "default tiles: C = K = V = 64, partial last chunk",
    variant: "gla",
    shape: { B: 1, T: 150, H: 1, K: 64, V: 64, M: 0 },
    params: { chunk_size: 64 },
    gates: [-0.6, 0],
    h0: true,
  },
  {
    name: "K, V, C not multiples of 4, 4 chunks, partial last",
    variant: "gla",
    shape: { B: 2, T: 39, H: 1, K: 10, V: 6, M: 0 },
    params: { chunk_size: 10 },
    gates: [-0.6, 0],
    h0: true,
  },
  {
    name: "several key, value and token slabs, partial last ones",
    variant: "gla",
    shape: { B: 1, T: 61, H: 2, K: 40, V: 36, M: 0 },
    params: { chunk_size: 24 },
    gates: [-0.6, 0],
    h0: true,
  },
  {
    name: "strong gates near logsigmoid(-10)",
    variant: "gla",
    shape: { B: 1, T: 50, H: 2, K: 16, V: 16, M: 0 },
    params: { chunk_size: 16 },
    gates: [-10, -9],
    h0: true,
    dgTol: 1e-2,
  },
  {
    name: "zero gates, no h0, C = T = 13",
    variant: "gla",
    shape: { B: 2, T: 13, H: 1, K: 12, V: 8, M: 0 },
    params: { chunk_size: 16 },
    gates: [0, 0],
    h0: false,
  },
];

function makeInputs(c: Case, seed: number): Inputs {
  const names: InputName[] = c.variant === "gla"
    ? ["q", "k", "v", "g", "do", ...(c.h0 ? ["h0" as const] : [])]
    : ["q", "k", "v", "do", ...(c.h0 ? ["h0" as const, "z0" as const] : [])];
  return uniformInputs({ variant: c.variant, mode: "fwdbwd", shape: c.shape }, seed, {
    names,
    ranges: { g: c.gates, z0: [0, 2] },
  });
}

if (backend) {
  const be = backend;
  after(() => be.close());
  describe("webgpu la/gla chunked backward vs fp64 oracle", () => {
    CASES.forEach((c, ci) => {
      for (const dtype of ["f32", "f16", "bf16"] as const) {
        const name = `${c.variant} ${c.name} ${dtype}`;
        const offered = be.impls().find((i) => i.variant === c.variant && i.impl === "chunk");
        if (!offered?.dtypes.includes(dtype)) {
          it.skip(`${name} (not offered)`, () => {});
          continue;
        }
        it(name, async () => {
          const req: OpRequest = {
            variant: c.variant,
            mode: "fwdbwd",
            params: { ...defaultParams(c.variant, c.shape.K), ...c.params },
            shape: c.shape,
          };
          const seed = SEED + 7919 * ci;
          const inputs = makeInputs(c, seed);
          const restore = c.tune ? scopeTune(c.tune) : () => {};
          try {
            const op = await be.prepare(req, inputs, { impl: "chunk", dtype });
            try {
              await op.poison();
              await op.run();
              const out = await op.read();
              const x: Record<string, Float64Array> = {};
              for (const [n, t] of Object.entries(inputs) as [string, Tensor][]) {
                x[n] = toF64(n === "h0" || n === "z0" ? t : cast(t, dtype));
              }
              const ref = oracle(c.variant).backward(x, c.shape, req.params);
              for (const o of Object.keys(outputShapes(req, inputs)) as (keyof typeof ref)[]) {
                const got = out[o];
                assert.ok(got, `output ${o} missing`);
                const tol = o === "dg" && c.dgTol
                  ? Math.max(c.dgTol, dtype === "f32" ? 0 : GRAD_TOL)
                  : dtype === "f32"
                  ? TOL.f32
                  : o === "o" || o === "final_state" || o === "final_z"
                  ? TOL[dtype]
                  : GRAD_TOL;
                const e = relErr(got.data, ref[o]!);
                assert.ok(e <= tol, `${o} rel err ${e} > ${tol} (WEBGPU_TEST_SEED=${SEED})`);
              }
            } finally {
              op.dispose();
            }
          } finally {
            restore();
          }
        });
      }
    });
  });
}
