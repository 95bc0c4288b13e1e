import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultParams, type Shape } from "../../bench/ops.ts";
import { recurrent } from "../../kernels/reference/la/recurrent.ts";
import { chunk } from "../../kernels/reference/la/chunk.ts";
import { assertAllClose, checkGradients, makeInputs, nextSeed, relErr } from "./util.ts";

const IMPLS = { recurrent, chunk };
const tiny: Shape = { B: 2, T: 7, H: 2, K: 3, V: 4, M: 0 };
const params = (K: number, normalize: boolean, chunk_size: number) => ({
  ...defaultParams("la", K),
  normalize,
  chunk_size,
});

describe("la reference", () => {
  for (const [implName, impl] of Object.entries(IMPLS)) {
    for (const normalize of [true, false]) {
      for (const [h0, z0] of [[false, false], [true, false], [true, true], [false, true]]) {
        it(`${implName} gradients match finite differences (normalize=${normalize} h0=${h0} z0=${z0})`, () => {
          const seed = nextSeed();
          const x = makeInputs("la", tiny, seed, { h0, z0 });
          const p = params(tiny.K, normalize, 3);
          checkGradients(impl, x, tiny, p, 1e-6, `la ${implName}`, seed);
        });
      }
    }
  }

  for (const normalize of [true, false]) {
    it(`chunk matches recurrent over chunk sizes and lengths (normalize=${normalize})`, () => {
      for (const T of [1, 5, 16, 37]) {
        for (const C of [1, 3, 4, 16]) {
          const s: Shape = { B: 2, T, H: 2, K: 4, V: 5, M: 0 };
          const seed = nextSeed();
          const x = makeInputs("la", s, seed, { h0: true, z0: true });
          const p = params(s.K, normalize, C);
          const what = `la T=${T} C=${C} normalize=${normalize}`;
          assertAllClose(chunk.forward(x, s, p), recurrent.forward(x, s, p), 1e-11, what, seed);
          assertAllClose(chunk.backward(x, s, p), recurrent.backward(x, s, p), 1e-11, what, seed);
        }
      }
    });
  }

  // T=2, K=V=1: φ(q) = [2, 1], φ(k) = [1, 2], v = [3, 1], so S = [3, 5] and z = [1, 3].
  const s1: Shape = { B: 1, T: 2, H: 1, K: 1, V: 1, M: 0 };
  const x1 = () => ({
    q: Float64Array.of(1, 0),
    k: Float64Array.of(0, 1),
    v: Float64Array.of(3, 1),
  });
  for (const [implName, impl] of Object.entries(IMPLS)) {
    it(`${implName} known answer, unnormalized`, () => {
      const out = impl.forward(x1(), s1, { ...params(1, false, 1), scale: 0.5 });
      assert.deepEqual([...out.o!], [3, 2.5]);
      assert.deepEqual([...out.final_state!], [5]);
      assert.equal(out.final_z, undefined);
    });
    it(`${implName} known answer, normalized with h0 = z0 = 1`, () => {
      const out = impl.forward(
        { ...x1(), h0: Float64Array.of(1), z0: Float64Array.of(1) },
        s1,
        params(1, true, 2),
      );
      // S = [4, 6], z = [2, 4]
      assert.ok(relErr(out.o!, Float64Array.of(8 / (4 + 1e-6), 6 / (4 + 1e-6))) < 1e-15);
      assert.deepEqual([...out.final_state!], [6]);
      assert.deepEqual([...out.final_z!], [4]);
    });
  }

  it("matches the quadratic (attention) form on random inputs", () => {
    const s: Shape = { B: 2, T: 9, H: 3, K: 4, V: 5, M: 0 };
    const seed = nextSeed();
    const x = makeInputs("la", s, seed);
    const phi = (t: number) => (t > 0 ? t + 1 : Math.exp(t));
    for (const normalize of [true, false]) {
      const p = params(s.K, normalize, 4);
      const want = new Float64Array(s.B * s.T * s.H * s.V);
      for (let b = 0; b < s.B; b++) {
        for (let h = 0; h < s.H; h++) {
          for (let t = 0; t < s.T; t++) {
            let den = 1e-6;
            const num = new Float64Array(s.V);
            for (let u = 0; u <= t; u++) {
              let a = 0;
              for (let i = 0; i < s.K; i++) {
                a += phi(x.q![((b * s.T + t) * s.H + h) * s.K + i]) *
                  phi(x.k![((b * s.T + u) * s.H + h) * s.K + i]);
              }
              den += a;
              for (let j = 0; j < s.V; j++) num[j] += a * x.v![((b * s.T + u) * s.H + h) * s.V + j];
            }
            for (let j = 0; j < s.V; j++) {
              want[((b * s.T + t) * s.H + h) * s.V + j] = normalize
                ? num[j] / den
                : p.scale * num[j];
            }
          }
        }
      }
      for (const impl of Object.values(IMPLS)) {
        assertAllClose({ o: impl.forward(x, s, p).o }, { o: want }, 1e-12, "la quadratic", seed);
      }
    }
  });
});
