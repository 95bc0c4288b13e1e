import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultParams, type Shape } from "../../bench/ops.ts";
import { recurrent } from "../../kernels/reference/deltanet/recurrent.ts";
import { chunk } from "../../kernels/reference/deltanet/chunk.ts";
import { assertAllClose, checkGradients, makeInputs, nextSeed, relErr } from "./util.ts";

const IMPLS = { recurrent, chunk };
const tiny: Shape = { B: 2, T: 7, H: 2, K: 3, V: 4, M: 0 };
const params = (K: number, qk_l2norm: boolean, chunk_size: number) => ({
  ...defaultParams("deltanet", K),
  qk_l2norm,
  chunk_size,
});
// Without l2 normalization, keys of norm ≈ 0.5 keep I − βkkᵀ contractive, as a model's would.
const qkScale = (l2: boolean, K: number) => (l2 ? 1 : 0.5 / Math.sqrt(K));

describe("deltanet reference", () => {
  for (const [implName, impl] of Object.entries(IMPLS)) {
    for (const l2 of [true, false]) {
      for (const h0 of [false, true]) {
        it(`${implName} gradients match finite differences (qk_l2norm=${l2} h0=${h0})`, () => {
          const seed = nextSeed();
          const x = makeInputs("deltanet", tiny, seed, { h0, qkScale: qkScale(l2, tiny.K) });
          const p = params(tiny.K, l2, 3);
          checkGradients(impl, x, tiny, p, 1e-6, `deltanet ${implName}`, seed);
        });
      }
    }
  }

  for (const l2 of [true, false]) {
    it(`chunk matches recurrent over chunk sizes and lengths (qk_l2norm=${l2})`, () => {
      for (const T of [1, 5, 16, 37]) {
        for (const C of [1, 3, 4, 16]) {
          const s: Shape = { B: 2, T, H: 2, K: 4, V: 5, M: 0 };
          const seed = nextSeed();
          const x = makeInputs("deltanet", s, seed, { h0: true, qkScale: qkScale(l2, s.K) });
          const p = params(s.K, l2, C);
          const what = `deltanet T=${T} C=${C} qk_l2norm=${l2}`;
          assertAllClose(chunk.forward(x, s, p), recurrent.forward(x, s, p), 1e-11, what, seed);
          assertAllClose(chunk.backward(x, s, p), recurrent.backward(x, s, p), 1e-11, what, seed);
        }
      }
    });
  }

  const s1: Shape = { B: 1, T: 2, H: 1, K: 1, V: 1, M: 0 };
  const x1 = () => ({
    q: Float64Array.of(1, 2),
    k: Float64Array.of(1, 0.5),
    v: Float64Array.of(2, 4),
    beta: Float64Array.of(0.5, 1),
  });
  for (const [implName, impl] of Object.entries(IMPLS)) {
    it(`${implName} known answer without normalization`, () => {
      // u1 = 2, S1 = 0.5·1·2 = 1, o1 = 1; u2 = 4 − 0.5 = 3.5, S2 = 1 + 0.5·3.5 = 2.75, o2 = 5.5
      const out = impl.forward(x1(), s1, params(1, false, 2));
      assert.deepEqual([...out.o!], [1, 5.5]);
      assert.deepEqual([...out.final_state!], [2.75]);
    });
    it(`${implName} known answer with l2 normalization and h0`, () => {
      // q̂ = k̂ = n(x) = x/√(x² + 1e-6) for every token; h0 = 3
      const n = (t: number) => t / Math.sqrt(t * t + 1e-6);
      const [q1, q2, k1, k2] = [n(1), n(2), n(1), n(0.5)];
      const S1 = 3 + 0.5 * k1 * (2 - 3 * k1);
      const S2 = S1 + k2 * (4 - S1 * k2);
      const out = impl.forward({ ...x1(), h0: Float64Array.of(3) }, s1, params(1, true, 1));
      assert.ok(relErr(out.o!, Float64Array.of(S1 * q1, S2 * q2)) < 1e-15);
      assert.ok(relErr(out.final_state!, Float64Array.of(S2)) < 1e-15);
    });
  }

  it("matches the matrix form S_t = (I − βkkᵀ)S_{t-1} + βkvᵀ on random inputs", () => {
    const s: Shape = { B: 2, T: 9, H: 3, K: 4, V: 5, M: 0 };
    const { B, T, H, K, V } = s;
    const seed = nextSeed();
    const x = makeInputs("deltanet", s, seed, { h0: true, qkScale: qkScale(false, K) });
    const p = params(K, false, 4);
    const want = new Float64Array(B * T * H * V);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        let S = Array.from(
          { length: K },
          (_, i) => Array.from({ length: V }, (_, j) => x.h0![((b * H + h) * K + i) * V + j]),
        );
        for (let t = 0; t < T; t++) {
          const row = (b * T + t) * H + h;
          const kv = [...x.k!.subarray(row * K, row * K + K)];
          const qv = [...x.q!.subarray(row * K, row * K + K)];
          const bt = x.beta![row];
          S = S.map((_, i) =>
            Array.from({ length: V }, (_, j) => {
              let acc = bt * kv[i] * x.v![row * V + j];
              for (let l = 0; l < K; l++) acc += ((i === l ? 1 : 0) - bt * kv[i] * kv[l]) * S[l][j];
              return acc;
            })
          );
          for (let j = 0; j < V; j++) {
            let acc = 0;
            for (let i = 0; i < K; i++) acc += S[i][j] * qv[i];
            want[row * V + j] = p.scale * acc;
          }
        }
      }
    }
    for (const impl of Object.values(IMPLS)) {
      assertAllClose({ o: impl.forward(x, s, p).o }, { o: want }, 1e-12, "deltanet matrix", seed);
    }
  });
});
