/**
 * la forward on a real GPU through the cuda backend, against the fp64 oracle. Runs only with
 * LAB_GPU_TESTS=1 (deno task test:gpu); otherwise this file registers nothing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { openCuda } from "../../bench/backends/cuda.ts";
import type { Backend } from "../../bench/backends/backend.ts";
import {
  defaultParams,
  type Inputs,
  type OpParams,
  type OpRequest,
  type Shape,
} from "../../bench/ops.ts";
import { type Dtype, f32ToBf16Bits, type Tensor, tensor, toF64 } from "../../bench/tensor.ts";
import { oracle } from "../../kernels/reference/index.ts";
import type { RefInputs } from "../../kernels/reference/types.ts";

const TOL: Record<"f32" | "bf16", number> = { f32: 2e-5, bf16: 5e-3 };

/** A small deterministic PRNG (mulberry32) and a roughly normal sample from it. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randn(r: () => number): number {
  return (r() + r() + r() - 1.5) * 2; // sum of uniforms: mean 0, sd 1
}

/** Random inputs already stored at `dtype` (q,k,v) and f32 (h0, z0; z0 positive). */
function makeInputs(s: Shape, dtype: "f32" | "bf16", seed: number, withState: boolean): Inputs {
  const r = rng(seed);
  const mk = (shape: number[], d: Dtype, f: () => number): Tensor => {
    const t = tensor(d, shape);
    const data = t.data;
    for (let i = 0; i < data.length; i++) data[i] = d === "bf16" ? f32ToBf16Bits(f()) : f();
    return t;
  };
  const x: Inputs = {
    q: mk([s.B, s.T, s.H, s.K], dtype, () => randn(r)),
    k: mk([s.B, s.T, s.H, s.K], dtype, () => randn(r)),
    v: mk([s.B, s.T, s.H, s.V], dtype, () => randn(r)),
  };
  if (withState) {
    x.h0 = mk([s.B, s.H, s.K, s.V], "f32", () => randn(r));
    x.z0 = mk([s.B, s.H, s.K], "f32", () => 1 + r() * 4);
  }
  return x;
}

function toRef(x: Inputs): RefInputs {
  const out: RefInputs = {};
  for (const [k, t] of Object.entries(x)) out[k as keyof RefInputs] = toF64(t as Tensor);
  return out;
}

/** ‖out − ref‖/‖ref‖ over the first n elements; NaN (never passing) when out is not finite. */
function relErr(out: Tensor, ref: Float64Array, n = ref.length): number {
  assert.equal(out.dtype, "f32");
  const o = out.data;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(o[i])) return NaN;
    num += (o[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num) / Math.sqrt(den);
}

function request(s: Shape, params: Partial<OpParams>): OpRequest {
  return {
    variant: "la",
    mode: "fwd",
    shape: s,
    params: { ...defaultParams("la", s.K), ...params },
  };
}

if (Deno.env.get("LAB_GPU_TESTS") === "1") {
  let cuda: Backend;
  before(async () => {
    cuda = await openCuda();
  });
  after(() => cuda?.close());

  const shape = (B: number, T: number, H: number, D: number): Shape => ({
    B,
    T,
    H,
    K: D,
    V: D,
    M: 0,
  });
  const CASES: { s: Shape; state: boolean; normalize: boolean }[] = [
    { s: shape(1, 1, 1, 64), state: false, normalize: true },
    { s: shape(1, 37, 1, 64), state: true, normalize: true },
    { s: shape(1, 63, 1, 128), state: false, normalize: false },
    { s: shape(2, 200, 4, 64), state: true, normalize: false },
    { s: shape(2, 257, 4, 128), state: true, normalize: true },
    { s: shape(4, 100, 16, 64), state: false, normalize: true },
    { s: shape(4, 130, 16, 128), state: true, normalize: false },
    // several chunks per segment (cps = 2) and a partial last segment
    { s: shape(1, 33000, 8, 64), state: true, normalize: true },
  ];

  describe("cuda la chunk forward vs the fp64 oracle", () => {
    let seed = 1;
    for (const dtype of ["f32", "bf16"] as const) {
      for (const c of CASES) {
        const { B, T, H, K } = c.s;
        const name = `${dtype} B${B} T${T} H${H} D${K} ${c.state ? "h0/z0" : "no state"} ` +
          `normalize=${c.normalize}`;
        it(name, async () => {
          const req = request(c.s, { normalize: c.normalize });
          const inputs = makeInputs(c.s, dtype, seed++, c.state);
          const op = await cuda.prepare(req, inputs, { impl: "chunk", dtype });
          try {
            await op.poison();
            await op.run();
            const out = await op.read();
            const ref = oracle("la").forward(toRef(inputs), c.s, req.params);
            const names = c.normalize
              ? ["o", "final_state", "final_z"] as const
              : ["o", "final_state"] as const;
            for (const n of names) {
              assert.ok(out[n], `missing output ${n}`);
              const e = relErr(out[n]!, ref[n]!);
              assert.ok(e <= TOL[dtype], `${n}: relative error ${e} > ${TOL[dtype]}`);
            }
          } finally {
            op.dispose();
          }
        });
      }
    }
  });

  describe("cuda la chunk forward at T = 1,048,576", () => {
    for (const dtype of ["bf16", "f32"] as const) {
      it(`${dtype} B1 H8 D64: finite, and the first 2,048 tokens match the oracle`, async () => {
        const s = shape(1, 1 << 20, 8, 64);
        const req = request(s, {});
        const inputs = makeInputs(s, dtype, 1234, false);
        const op = await cuda.prepare(req, inputs, { impl: "chunk", dtype });
        try {
          await op.poison();
          await op.run();
          const out = await op.read();
          const o = out.o!.data;
          for (let i = 0; i < o.length; i++) {
            if (!Number.isFinite(o[i])) assert.fail(`o[${i}] is ${o[i]}`);
          }
          for (const x of out.final_state!.data) assert.ok(Number.isFinite(x));
          const P = 2048;
          const ps = { ...s, T: P };
          const prefix: RefInputs = {};
          for (const n of ["q", "k", "v"] as const) {
            const t = inputs[n]!;
            prefix[n] = toF64(tensor(t.dtype, [1, P, 8, 64], t.data.subarray(0, P * 8 * 64)));
          }
          const ref = oracle("la").forward(prefix, ps, req.params);
          const e = relErr(out.o!, ref.o!, P * 8 * 64);
          assert.ok(e <= TOL[dtype], `o[0:${P}] relative error ${e} > ${TOL[dtype]}`);
        } finally {
          op.dispose();
        }
      });
    }
  });
}
