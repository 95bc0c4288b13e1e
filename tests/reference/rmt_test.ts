import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { defaultParams, type OpParams, type Shape } from "../../bench/ops.ts";
import { recurrent } from "../../kernels/reference/rmt/recurrent.ts";
import { chunk } from "../../kernels/reference/rmt/chunk.ts";
import { finiteDiff, makeInputs, relErr } from "../oracle/harness.ts";

const shape = (B: number, T: number, H: number, D: number, M: number): Shape => ({
  B,
  T,
  H,
  K: D,
  V: D,
  M,
});
const params = (D: number, over: Partial<OpParams> = {}): OpParams => ({
  ...defaultParams("rmt", D),
  ...over,
});
const IMPLS = [["recurrent", recurrent], ["chunk", chunk]] as const;
const OUTS = ["o", "final_state", "dq", "dk", "dv", "dmem"] as const;

describe("rmt reference: known answer", () => {
  // T=2, D=1, M=1, L=1, scale 1. Segment 0: keys [m₀, k₀] = [0, ln 3], so token 0 weighs
  // values [0, 4] by [1/4, 3/4] → o₀ = 3; the memory row's logits are m₀·keys = [0, 0] →
  // M₁ = (0 + 4)/2 = 2. Segment 1: q₁ = 0 → o₁ = (M₁ + v₁)/2 = 4; memory logits M₁·[M₁, k₁]
  // = [4, 4] → M₂ = (2 + 6)/2 = 4.
  const s = shape(1, 2, 1, 1, 1);
  const x = {
    q: Float64Array.of(1, 0),
    k: Float64Array.of(Math.log(3), 2),
    v: Float64Array.of(4, 6),
    mem: Float64Array.of(0),
  };
  for (const [name, impl] of IMPLS) {
    it(name, () => {
      const out = impl.forward(x, s, params(1, { scale: 1, segment_len: 1, chunk_size: 1 }));
      assert.ok(Math.abs(out.o![0] - 3) < 1e-14 && Math.abs(out.o![1] - 4) < 1e-14, `o ${out.o}`);
      assert.ok(Math.abs(out.final_state![0] - 4) < 1e-14, `final_state ${out.final_state}`);
    });
  }
});

// T < L, T = L, and several segments with a partial last one
const SEGMENTS: [T: number, L: number, M: number][] = [[3, 5, 2], [4, 4, 1], [8, 3, 2], [7, 2, 3]];

describe("rmt reference: gradients vs finite differences", () => {
  for (const [T, L, M] of SEGMENTS) {
    for (const [name, impl] of IMPLS) {
      it(`${name} T=${T} L=${L} M=${M}`, () => {
        const s = shape(2, T, 2, 3, M);
        const x = makeInputs("rmt", s, 7 * T + L);
        const p = params(3, { segment_len: L, chunk_size: 2 });
        const out = impl.backward(x, s, p);
        for (const n of ["q", "k", "v", "mem"] as const) {
          const e = relErr(out[`d${n}`]!, finiteDiff(impl, x, s, p, n));
          assert.ok(e <= 1e-6, `d${n}: relative error ${e}`);
        }
      });
    }
  }
});

describe("rmt reference: chunk equals recurrent", () => {
  for (const T of [1, 5, 16, 37]) {
    for (const C of [1, 3, 4, 16]) {
      for (const L of [4, 7, 64]) {
        it(`T=${T} C=${C} L=${L}`, () => {
          const s = shape(2, T, 2, 4, 3);
          const x = makeInputs("rmt", s, 1000 * T + 10 * C + L);
          const p = params(4, { chunk_size: C, segment_len: L });
          const a = recurrent.backward(x, s, p), b = chunk.backward(x, s, p);
          const f = chunk.forward(x, s, p);
          for (const k of ["o", "final_state"] as const) {
            assert.ok(relErr(f[k]!, a[k]!) <= 1e-11, `forward ${k}: ${relErr(f[k]!, a[k]!)}`);
          }
          for (const k of OUTS) {
            const e = relErr(b[k]!, a[k]!);
            assert.ok(e <= 1e-11, `${k}: relative error ${e}`);
          }
        });
      }
    }
  }
});

describe("rmt reference: forward and backward agree", () => {
  it("backward returns the forward outputs", () => {
    const s = shape(1, 8, 2, 3, 2);
    const x = makeInputs("rmt", s, 3);
    const p = params(3, { segment_len: 3 });
    for (const [, impl] of IMPLS) {
      const f = impl.forward(x, s, p), b = impl.backward(x, s, p);
      assert.deepEqual(b.o, f.o);
      assert.deepEqual(b.final_state, f.final_state);
    }
  });
});
