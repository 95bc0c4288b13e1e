/**
 * Gated linear attention in chunks of C = chunk_size tokens, the algebra of the GPU kernels,
 * with decays as within-chunk cumulative log gates G. Every decay factor is exp of a difference
 * that is ≤ 0 for g ≤ 0 (G_i − G_j with j ≤ i, Γ − G_j), never exp(G)·exp(−G), which would
 * overflow for strong decays. Same function as ./recurrent.ts.
 */
import type { OpParams, Shape } from "../../../bench/ops.ts";
import type { ReferenceImpl, RefInputs, RefOutputs } from "../types.ts";
import { gatherRows, gemm, scatterRows } from "../linalg.ts";
import { sweep } from "../sweep.ts";

function run(x: RefInputs, s: Shape, p: OpParams, grad: boolean): RefOutputs {
  const { B, T, H, K, V } = s;
  const q = x.q!, k = x.k!, v = x.v!, g = x.g!, h0 = x.h0, dout = x.do;
  const scale = p.scale;
  const C = Math.min(p.chunk_size, T), nChunks = Math.ceil(T / p.chunk_size);
  const KV = K * V;
  const o = new Float64Array(B * T * H * V);
  const finalState = new Float64Array(B * H * KV);
  const dq = grad ? new Float64Array(q.length) : undefined;
  const dk = grad ? new Float64Array(k.length) : undefined;
  const dv = grad ? new Float64Array(v.length) : undefined;
  const dg = grad ? new Float64Array(g.length) : undefined;
  const dh0 = grad && h0 ? new Float64Array(h0.length) : undefined;

  const state = new Float64Array(KV);
  const Q = new Float64Array(C * K), Kc = new Float64Array(C * K), Vc = new Float64Array(C * V);
  const G = new Float64Array(C * K), Qg = new Float64Array(C * K), Kg = new Float64Array(C * K);
  const A = new Float64Array(C * C), O = new Float64Array(C * V);
  const dO = new Float64Array(C * V), dA = new Float64Array(C * C);
  const dQ = new Float64Array(C * K), dK = new Float64Array(C * K), dVc = new Float64Array(C * V);
  const dKg = new Float64Array(C * K), dS = new Float64Array(KV), gam = new Float64Array(K);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      state.fill(0);
      if (h0) state.set(h0.subarray(bh * KV, (bh + 1) * KV));
      const kBase = (b * T * H + h) * K, vBase = (b * T * H + h) * V;

      // Loads chunk ci: Q, K, V, G (inclusive cumsum of g), Γ, Q⊙exp(G), K⊙exp(Γ−G); returns c.
      const load = (ci: number): number => {
        const t0 = ci * C, c = Math.min(C, T - t0);
        gatherRows(q, kBase + t0 * H * K, H * K, c, K, Q);
        gatherRows(k, kBase + t0 * H * K, H * K, c, K, Kc);
        gatherRows(v, vBase + t0 * H * V, H * V, c, V, Vc);
        gatherRows(g, kBase + t0 * H * K, H * K, c, K, G);
        for (let i = 1; i < c; i++) {
          for (let l = 0; l < K; l++) G[i * K + l] += G[(i - 1) * K + l];
        }
        gam.set(G.subarray((c - 1) * K, c * K));
        for (let i = 0; i < c * K; i++) {
          Qg[i] = Q[i] * Math.exp(G[i]);
          Kg[i] = Kc[i] * Math.exp(gam[i % K] - G[i]);
        }
        return c;
      };

      const step = (ci: number, st: Float64Array, emit: boolean) => {
        const c = load(ci);
        if (emit) {
          A.fill(0, 0, c * c);
          for (let i = 0; i < c; i++) {
            for (let j = 0; j <= i; j++) {
              let acc = 0;
              for (let l = 0; l < K; l++) {
                acc += Q[i * K + l] * Kc[j * K + l] * Math.exp(G[i * K + l] - G[j * K + l]);
              }
              A[i * c + j] = acc;
            }
          }
          gemm(c, V, K, scale, Qg, false, st, false, O);
          gemm(c, V, c, scale, A, false, Vc, false, O, true);
          scatterRows(O, c, V, o, vBase + ci * C * H * V, H * V);
        }
        for (let l = 0; l < K; l++) {
          const a = Math.exp(gam[l]);
          for (let j = 0; j < V; j++) st[l * V + j] *= a;
        }
        gemm(K, V, c, 1, Kg, true, Vc, false, st, true);
      };

      // dS: gradient w.r.t. the state after chunk ci.
      const back = (ci: number, prev: Float64Array, cur: Float64Array) => {
        const c = load(ci);
        gatherRows(dout!, vBase + ci * C * H * V, H * V, c, V, dO);
        gemm(c, c, V, scale, dO, false, Vc, true, dA);
        // dQ: inter-chunk part through Q⊙exp(G), then the causal part alongside A and dK.
        gemm(c, K, V, scale, dO, false, prev, true, dQ);
        for (let i = 0; i < c * K; i++) dQ[i] *= Math.exp(G[i]);
        A.fill(0, 0, c * c);
        dK.fill(0, 0, c * K);
        for (let i = 0; i < c; i++) {
          for (let j = 0; j <= i; j++) {
            const da = dA[i * c + j];
            let acc = 0;
            for (let l = 0; l < K; l++) {
              const e = Math.exp(G[i * K + l] - G[j * K + l]);
              acc += Q[i * K + l] * Kc[j * K + l] * e;
              dQ[i * K + l] += da * Kc[j * K + l] * e;
              dK[j * K + l] += da * Q[i * K + l] * e;
            }
            A[i * c + j] = acc;
          }
        }
        // Through K⊙exp(Γ−G) into the carried state.
        gemm(c, K, V, 1, Vc, false, dS, true, dKg);
        for (let i = 0; i < c * K; i++) dK[i] += dKg[i] * Math.exp(gam[i % K] - G[i]);
        gemm(c, V, c, scale, A, true, dO, false, dVc);
        gemm(c, V, K, 1, Kg, false, dS, false, dVc, true);
        // dG = Q⊙dQ − K⊙dK, plus dΓ = rowsum(S_new ⊙ dS) on the last row; dg is its
        // reverse cumsum within the chunk. G is reused as dG.
        for (let i = 0; i < c * K; i++) G[i] = Q[i] * dQ[i] - Kc[i] * dK[i];
        for (let l = 0; l < K; l++) {
          let acc = 0;
          for (let j = 0; j < V; j++) acc += cur[l * V + j] * dS[l * V + j];
          G[(c - 1) * K + l] += acc;
        }
        for (let i = c - 2; i >= 0; i--) {
          for (let l = 0; l < K; l++) G[i * K + l] += G[(i + 1) * K + l];
        }
        // carry: dS ← diag(exp(Γ))·dS + scale·(Q⊙exp(G))ᵀ·dO
        for (let l = 0; l < K; l++) {
          const a = Math.exp(gam[l]);
          for (let j = 0; j < V; j++) dS[l * V + j] *= a;
        }
        gemm(K, V, c, scale, Qg, true, dO, false, dS, true);
        const kOff = kBase + ci * C * H * K;
        scatterRows(dQ, c, K, dq!, kOff, H * K);
        scatterRows(dK, c, K, dk!, kOff, H * K);
        scatterRows(G, c, K, dg!, kOff, H * K);
        scatterRows(dVc, c, V, dv!, vBase + ci * C * H * V, H * V);
      };

      dS.fill(0);
      sweep(nChunks, state, step, grad ? back : undefined);
      finalState.set(state, bh * KV);
      if (dh0) dh0.set(dS, bh * KV);
    }
  }
  const out: RefOutputs = { o, final_state: finalState };
  if (grad) Object.assign(out, { dq, dk, dv, dg });
  if (dh0) out.dh0 = dh0;
  return out;
}

export const chunk: ReferenceImpl = {
  forward: (x, s, p) => run(x, s, p, false),
  backward: (x, s, p) => run(x, s, p, true),
};
