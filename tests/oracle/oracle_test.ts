/**
 * Every registered reference impl against the autodiff oracle: forward outputs from the math
 * written directly, gradients from the tape, never from a hand derivation.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { defaultParams, type OpParams, type Shape, type Variant } from "../../bench/ops.ts";
import { REFERENCES } from "../../kernels/reference/index.ts";
import type { RefOutputs } from "../../kernels/reference/types.ts";
import { type Node, Tape } from "./autodiff.ts";
import { adOracle } from "./ops.ts";
import { type InputOptions, makeInputs, relErr } from "./harness.ts";

const TOL = 1e-10;

interface Case {
  name: string;
  shape: Shape;
  params?: Partial<OpParams>;
  inputs?: InputOptions;
}

const small: Shape = { B: 2, T: 5, H: 2, K: 3, V: 4, M: 0 };
const CASES: Record<Variant, Case[]> = {
  la: [
    { name: "normalize", shape: small, params: { normalize: true } },
    {
      name: "normalize h0 z0",
      shape: small,
      params: { normalize: true },
      inputs: { h0: true, z0: true },
    },
    { name: "unnormalized", shape: small, params: { normalize: false, chunk_size: 3 } },
    // z0 given but unused: dz0 must come back as zeros
    {
      name: "unnormalized h0 z0",
      shape: small,
      params: { normalize: false },
      inputs: { h0: true, z0: true },
    },
  ],
  gla: [
    { name: "no h0", shape: small },
    { name: "h0", shape: small, params: { chunk_size: 3 }, inputs: { h0: true } },
  ],
  deltanet: [
    { name: "l2norm", shape: small, params: { qk_l2norm: true } },
    {
      name: "l2norm h0",
      shape: small,
      params: { qk_l2norm: true, chunk_size: 3 },
      inputs: { h0: true },
    },
    { name: "raw qk", shape: small, params: { qk_l2norm: false } },
    { name: "raw qk h0", shape: small, params: { qk_l2norm: false }, inputs: { h0: true } },
  ],
  rmt: [
    {
      name: "2.67 segments",
      shape: { B: 1, T: 8, H: 2, K: 3, V: 3, M: 2 },
      params: { segment_len: 3 },
    },
    { name: "T < L", shape: { B: 2, T: 2, H: 1, K: 3, V: 3, M: 1 }, params: { segment_len: 3 } },
    {
      name: "2 whole segments",
      shape: { B: 1, T: 6, H: 2, K: 2, V: 2, M: 3 },
      params: { segment_len: 3, chunk_size: 3 },
    },
  ],
  softmax: [
    { name: "T=6", shape: { B: 2, T: 6, H: 2, K: 3, V: 3, M: 0 } },
    { name: "T=7 C=3", shape: { B: 1, T: 7, H: 2, K: 4, V: 4, M: 0 }, params: { chunk_size: 3 } },
  ],
};

let seed = 1;
for (const v of Object.keys(CASES) as Variant[]) {
  describe(`${v}: references vs autodiff oracle`, () => {
    for (const c of CASES[v]) {
      const p = { ...defaultParams(v, c.shape.K), chunk_size: 2, ...c.params };
      const x = makeInputs(v, c.shape, seed++, c.inputs) as Record<string, Float64Array>;
      const want = adOracle(v, c.shape, x, p);
      const fwdKeys = Object.keys(want).filter((k) => !k.startsWith("d")) as (keyof RefOutputs)[];
      for (const [implName, impl] of Object.entries(REFERENCES[v].impls)) {
        it(`${implName} ${c.name}`, () => {
          const f = impl.forward(x, c.shape, p);
          const b = impl.backward(x, c.shape, p);
          for (const k of fwdKeys) {
            assert.ok(f[k], `forward is missing ${k}`);
            assert.ok(relErr(f[k]!, want[k]!) <= TOL, `forward ${k}: ${relErr(f[k]!, want[k]!)}`);
          }
          for (const k of Object.keys(want) as (keyof RefOutputs)[]) {
            assert.ok(b[k], `backward is missing ${k}`);
            const e = relErr(b[k]!, want[k]!);
            assert.ok(e <= TOL, `backward ${k}: relative error ${e}`);
          }
        });
      }
    }
  });
}

describe("autodiff tape vs finite differences", () => {
  // Uses every tape op, both elu branches, and a node feeding several consumers.
  const f = (tp: Tape, x: Node[]): Node => {
    const [a, b, c] = x;
    const w = tp.softmax([a, tp.mul(a, b), tp.scale(c, 0.5)]);
    const r = tp.div(tp.sqrt(tp.shift(tp.mul(b, b), 1)), tp.exp(tp.sub(c, a)));
    return tp.add(tp.dot(w, [tp.elu1(a), tp.elu1(b), tp.log(tp.shift(tp.mul(c, c), 0.1))]), r);
  };
  it("gradient of a composite function", () => {
    const at = [0.3, -0.7, 1.1];
    const tp = new Tape();
    const x = at.map((e) => tp.leaf(e));
    tp.backward(f(tp, x));
    const h = 1e-6;
    const val = (v: number[]) => {
      const t = new Tape();
      return f(t, v.map((e) => t.leaf(e))).value;
    };
    at.forEach((_, i) => {
      const up = at.map((e, j) => (j === i ? e + h : e)),
        down = at.map((e, j) => (j === i ? e - h : e));
      const fd = (val(up) - val(down)) / (2 * h);
      assert.ok(
        Math.abs(x[i].grad - fd) <= 1e-8 * Math.max(1, Math.abs(fd)),
        `x${i}: ${x[i].grad} vs ${fd}`,
      );
    });
  });
});
