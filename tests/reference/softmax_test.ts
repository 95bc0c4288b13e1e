import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { defaultParams, type OpParams, type Shape } from "../../bench/ops.ts";
import { direct } from "../../kernels/reference/softmax/direct.ts";
import { chunk } from "../../kernels/reference/softmax/chunk.ts";
import { finiteDiff, makeInputs, relErr } from "../oracle/harness.ts";

const shape = (B: number, T: number, H: number, D: number): Shape => ({
  B,
  T,
  H,
  K: D,
  V: D,
  M: 0,
});
const params = (D: number, over: Partial<OpParams> = {}): OpParams => ({
  ...defaultParams("softmax", D),
  ...over,
});
const GRADS = ["dq", "dk", "dv"] as const;

describe("softmax reference: known answer", () => {
  // T=2, D=1, scale 1: row 0 sees only key 0; row 1 has logits q₁k = [0, ln 3], so weights
  // [1/4, 3/4]. With do = 1: dv = [1 + 1/4, 3/4]; dk_j = p_j (v_j − o₁) q₁; dq₁ = Σ p_j (v_j − o₁) k_j.
  const s = shape(1, 2, 1, 1);
  const x = {
    q: Float64Array.of(0.7, 1),
    k: Float64Array.of(0, Math.log(3)),
    v: Float64Array.of(2, 6),
    do: Float64Array.of(1, 1),
  };
  const want = {
    o: [2, 5],
    dq: [0, 0.75 * Math.log(3)],
    dk: [-0.75, 0.75],
    dv: [1.25, 0.75],
  };
  for (const [name, impl] of [["direct", direct], ["chunk", chunk]] as const) {
    it(name, () => {
      const out = impl.backward(x, s, params(1, { scale: 1, chunk_size: 1 }));
      for (const [k, w] of Object.entries(want)) {
        const got = out[k as keyof typeof want]!;
        w.forEach((wi, i) =>
          assert.ok(Math.abs(got[i] - wi) < 1e-14, `${k}[${i}] ${got[i]} ≠ ${wi}`)
        );
      }
    });
  }
});

describe("softmax reference: gradients vs finite differences", () => {
  const s = shape(2, 5, 2, 3);
  for (const [name, impl] of [["direct", direct], ["chunk", chunk]] as const) {
    it(name, () => {
      const x = makeInputs("softmax", s, 11);
      const p = params(3, { chunk_size: 2 });
      const out = impl.backward(x, s, p);
      for (const g of GRADS) {
        const fd = finiteDiff(impl, x, s, p, g.slice(1) as "q" | "k" | "v");
        const e = relErr(out[g]!, fd);
        assert.ok(e <= 1e-6, `${g}: relative error ${e}`);
      }
    });
  }
});

describe("softmax reference: chunk equals direct", () => {
  for (const T of [1, 5, 16, 37]) {
    for (const C of [1, 3, 4, 16]) {
      it(`T=${T} C=${C}`, () => {
        const s = shape(2, T, 2, 4);
        const x = makeInputs("softmax", s, 100 * T + C);
        const p = params(4, { chunk_size: C });
        const a = direct.backward(x, s, p), b = chunk.backward(x, s, p);
        const f = chunk.forward(x, s, p);
        assert.ok(relErr(f.o!, a.o!) <= 1e-11, `forward o: ${relErr(f.o!, a.o!)}`);
        for (const k of ["o", ...GRADS] as const) {
          const e = relErr(b[k]!, a[k]!);
          assert.ok(e <= 1e-11, `${k}: relative error ${e}`);
        }
      });
    }
  }
});

describe("softmax reference: long sequence", () => {
  // Hundreds of online-softmax rescalings per row; both forms keep O(T·D) memory.
  it("direct and chunk at T=8192 agree", () => {
    const s = shape(1, 8192, 1, 2);
    const x = makeInputs("softmax", s, 5);
    const p = params(2, { chunk_size: 64 });
    const e = relErr(chunk.forward(x, s, p).o!, direct.forward(x, s, p).o!);
    assert.ok(e <= 1e-11, `relative error ${e}`);
  });
});
