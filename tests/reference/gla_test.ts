import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultParams, type Shape } from "../../bench/ops.ts";
import { recurrent } from "../../kernels/reference/gla/recurrent.ts";
import { chunk } from "../../kernels/reference/gla/chunk.ts";
import {
  assertAllClose,
  checkGradients,
  type GateKind,
  makeInputs,
  nextSeed,
  relErr,
} from "./util.ts";

const IMPLS = { recurrent, chunk };
const GATES: GateKind[] = ["logsigmoid", "strong", "zero"];
const tiny: Shape = { B: 2, T: 7, H: 2, K: 3, V: 4, M: 0 };
const params = (K: number, chunk_size: number) => ({ ...defaultParams("gla", K), chunk_size });

describe("gla reference", () => {
  for (const [implName, impl] of Object.entries(IMPLS)) {
    for (const gate of GATES) {
      for (const h0 of [false, true]) {
        it(`${implName} gradients match finite differences (gate=${gate} h0=${h0})`, () => {
          const seed = nextSeed();
          const x = makeInputs("gla", tiny, seed, { h0, gate });
          checkGradients(impl, x, tiny, params(tiny.K, 3), 1e-6, `gla ${implName}`, seed);
        });
      }
    }
  }

  for (const gate of GATES) {
    it(`chunk matches recurrent over chunk sizes and lengths (gate=${gate})`, () => {
      for (const T of [1, 5, 16, 37]) {
        for (const C of [1, 3, 4, 16]) {
          const s: Shape = { B: 2, T, H: 2, K: 4, V: 5, M: 0 };
          const seed = nextSeed();
          const x = makeInputs("gla", s, seed, { h0: true, gate });
          const p = params(s.K, C);
          const what = `gla T=${T} C=${C} gate=${gate}`;
          assertAllClose(chunk.forward(x, s, p), recurrent.forward(x, s, p), 1e-11, what, seed);
          assertAllClose(chunk.backward(x, s, p), recurrent.backward(x, s, p), 1e-11, what, seed);
        }
      }
    });
  }

  for (const [implName, impl] of Object.entries(IMPLS)) {
    it(`${implName} known answer`, () => {
      // T=2, K=V=1, gates [1, 1/2]: S = [2, 2/2 + 3] = [2, 4], o = q·S = [2, 8].
      const s: Shape = { B: 1, T: 2, H: 1, K: 1, V: 1, M: 0 };
      const x = {
        q: Float64Array.of(1, 2),
        k: Float64Array.of(1, 1),
        v: Float64Array.of(2, 3),
        g: Float64Array.of(0, Math.log(0.5)),
      };
      const out = impl.forward(x, s, params(1, 2));
      assert.ok(relErr(out.o!, Float64Array.of(2, 8)) < 1e-15);
      assert.ok(relErr(out.final_state!, Float64Array.of(4)) < 1e-15);
    });
  }

  it("matches the quadratic form with decays on random inputs", () => {
    const s: Shape = { B: 2, T: 9, H: 3, K: 4, V: 5, M: 0 };
    const seed = nextSeed();
    const x = makeInputs("gla", s, seed, { h0: true });
    const p = params(s.K, 4);
    const { B, T, H, K, V } = s;
    const want = new Float64Array(B * T * H * V);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let t = 0; t < T; t++) {
          const at = (a: Float64Array, u: number, i: number, n: number) =>
            a[((b * T + u) * H + h) * n + i];
          for (let j = 0; j < V; j++) {
            let acc = 0;
            for (let i = 0; i < K; i++) {
              // decay from the start of the sequence to t, for the h0 term
              let d0 = 0;
              for (let r = 0; r <= t; r++) d0 += at(x.g!, r, i, K);
              acc += at(x.q!, t, i, K) * Math.exp(d0) * x.h0![((b * H + h) * K + i) * V + j];
              for (let u = 0; u <= t; u++) {
                let d = 0;
                for (let r = u + 1; r <= t; r++) d += at(x.g!, r, i, K);
                acc += at(x.q!, t, i, K) * at(x.k!, u, i, K) * Math.exp(d) * at(x.v!, u, j, V);
              }
            }
            want[((b * T + t) * H + h) * V + j] = p.scale * acc;
          }
        }
      }
    }
    for (const impl of Object.values(IMPLS)) {
      assertAllClose({ o: impl.forward(x, s, p).o }, { o: want }, 1e-12, "gla quadratic", seed);
    }
  });
});
