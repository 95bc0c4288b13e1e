/**
 * Linear attention in chunks of C = chunk_size tokens, the algebra of the GPU kernels: the
 * carried state serves all queries of a chunk at once and a causal C×C product covers the
 * chunk's own keys. Same function as ./recurrent.ts.
 */
import type { OpParams, Shape } from "../../../bench/ops.ts";
import type { ReferenceImpl, RefInputs, RefOutputs } from "../types.ts";
import { gatherRows, gemm, scatterRows, trilInPlace } from "../linalg.ts";
import { sweep } from "../sweep.ts";
import { dphi, EPS, phi } from "./recurrent.ts";

function run(x: RefInputs, s: Shape, p: OpParams, grad: boolean): RefOutputs {
  const { B, T, H, K, V } = s;
  const q = x.q!, k = x.k!, v = x.v!, h0 = x.h0, z0 = x.z0, dout = x.do;
  const norm = p.normalize, scale = p.scale;
  const C = Math.min(p.chunk_size, T), nChunks = Math.ceil(T / p.chunk_size);
  const KV = K * V;
  const o = new Float64Array(B * T * H * V);
  const finalState = new Float64Array(B * H * KV);
  const finalZ = new Float64Array(B * H * K);
  const dq = grad ? new Float64Array(q.length) : undefined;
  const dk = grad ? new Float64Array(k.length) : undefined;
  const dv = grad ? new Float64Array(v.length) : undefined;
  const dh0 = grad && h0 ? new Float64Array(h0.length) : undefined;
  const dz0 = grad && z0 ? new Float64Array(z0.length) : undefined;

  const state = new Float64Array(KV + K); // [S | z]
  const Q = new Float64Array(C * K), Kc = new Float64Array(C * K), Vc = new Float64Array(C * V);
  const P = new Float64Array(C * C), num = new Float64Array(C * V), den = new Float64Array(C);
  const dO = new Float64Array(C * V), dP = new Float64Array(C * C), dden = new Float64Array(C);
  const dQ = new Float64Array(C * K), dK = new Float64Array(C * K), dVc = new Float64Array(C * V);
  const dS = new Float64Array(KV), dz = new Float64Array(K);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      state.fill(0);
      if (h0) state.set(h0.subarray(bh * KV, (bh + 1) * KV));
      if (z0) state.set(z0.subarray(bh * K, (bh + 1) * K), KV);
      const kBase = (b * T * H + h) * K, vBase = (b * T * H + h) * V;

      // Loads chunk ci as φ(Q), φ(K), V; returns its length.
      const load = (ci: number): number => {
        const t0 = ci * C, c = Math.min(C, T - t0);
        gatherRows(q, kBase + t0 * H * K, H * K, c, K, Q);
        gatherRows(k, kBase + t0 * H * K, H * K, c, K, Kc);
        gatherRows(v, vBase + t0 * H * V, H * V, c, V, Vc);
        for (let i = 0; i < c * K; i++) {
          Q[i] = phi(Q[i]);
          Kc[i] = phi(Kc[i]);
        }
        return c;
      };

      // num = φ(Q)S + P·V and den = φ(Q)z + P·1 + ε with P = tril(φ(Q)φ(K)ᵀ).
      const outputs = (c: number, st: Float64Array) => {
        gemm(c, V, K, 1, Q, false, st, false, num);
        gemm(c, c, K, 1, Q, false, Kc, true, P);
        trilInPlace(P, c, false);
        gemm(c, V, c, 1, P, false, Vc, false, num, true);
        for (let i = 0; i < c; i++) {
          let d = EPS;
          for (let l = 0; l < K; l++) d += Q[i * K + l] * st[KV + l];
          for (let j = 0; j <= i; j++) d += P[i * c + j];
          den[i] = d;
        }
      };

      const step = (ci: number, st: Float64Array, emit: boolean) => {
        const c = load(ci);
        if (emit) {
          outputs(c, st);
          for (let i = 0; i < c; i++) {
            const f = norm ? 1 / den[i] : scale;
            for (let j = 0; j < V; j++) num[i * V + j] *= f;
          }
          scatterRows(num, c, V, o, vBase + ci * C * H * V, H * V);
        }
        gemm(K, V, c, 1, Kc, true, Vc, false, st, true);
        for (let i = 0; i < c; i++) {
          for (let l = 0; l < K; l++) st[KV + l] += Kc[i * K + l];
        }
      };

      // dS, dz: gradients w.r.t. the state after chunk ci.
      const back = (ci: number, prev: Float64Array, _cur: Float64Array) => {
        const c = load(ci);
        outputs(c, prev);
        gatherRows(dout!, vBase + ci * C * H * V, H * V, c, V, dO);
        // dO becomes dℓ/dnum; dden = dℓ/dden.
        for (let i = 0; i < c; i++) {
          if (norm) {
            let acc = 0;
            for (let j = 0; j < V; j++) acc += dO[i * V + j] * num[i * V + j];
            dden[i] = -acc / (den[i] * den[i]);
            for (let j = 0; j < V; j++) dO[i * V + j] /= den[i];
          } else {
            dden[i] = 0;
            for (let j = 0; j < V; j++) dO[i * V + j] *= scale;
          }
        }
        // dP = tril(dnum·Vᵀ + dden·1ᵀ)
        gemm(c, c, V, 1, dO, false, Vc, true, dP);
        for (let i = 0; i < c; i++) {
          for (let j = 0; j < c; j++) dP[i * c + j] = j <= i ? dP[i * c + j] + dden[i] : 0;
        }
        // dφ(Q) = dnum·Sᵀ + dden·zᵀ + dP·φ(K)
        gemm(c, K, V, 1, dO, false, prev, true, dQ);
        gemm(c, K, c, 1, dP, false, Kc, false, dQ, true);
        for (let i = 0; i < c; i++) {
          for (let l = 0; l < K; l++) dQ[i * K + l] += dden[i] * prev[KV + l];
        }
        // dφ(K) = dPᵀ·φ(Q) + V·dSᵀ + 1·dzᵀ
        gemm(c, K, c, 1, dP, true, Q, false, dK);
        gemm(c, K, V, 1, Vc, false, dS, true, dK, true);
        for (let i = 0; i < c; i++) {
          for (let l = 0; l < K; l++) dK[i * K + l] += dz[l];
        }
        // dV = Pᵀ·dnum + φ(K)·dS
        gemm(c, V, c, 1, P, true, dO, false, dVc);
        gemm(c, V, K, 1, Kc, false, dS, false, dVc, true);
        // carry: dS += φ(Q)ᵀ·dnum, dz += φ(Q)ᵀ·dden
        gemm(K, V, c, 1, Q, true, dO, false, dS, true);
        for (let i = 0; i < c; i++) {
          for (let l = 0; l < K; l++) dz[l] += Q[i * K + l] * dden[i];
        }
        const kOff = kBase + ci * C * H * K;
        for (let i = 0; i < c; i++) {
          for (let l = 0; l < K; l++) {
            const g = kOff + i * H * K + l;
            dQ[i * K + l] *= dphi(q[g]);
            dK[i * K + l] *= dphi(k[g]);
          }
        }
        scatterRows(dQ, c, K, dq!, kOff, H * K);
        scatterRows(dK, c, K, dk!, kOff, H * K);
        scatterRows(dVc, c, V, dv!, vBase + ci * C * H * V, H * V);
      };

      dS.fill(0);
      dz.fill(0);
      sweep(nChunks, state, step, grad ? back : undefined);
      finalState.set(state.subarray(0, KV), bh * KV);
      finalZ.set(state.subarray(KV), bh * K);
      if (dh0) dh0.set(dS, bh * KV);
      // Without normalization z never reaches o, so dz0 stays zero.
      if (dz0 && norm) dz0.set(dz, bh * K);
    }
  }
  const out: RefOutputs = { o, final_state: finalState };
  if (norm) out.final_z = finalZ;
  if (grad) Object.assign(out, { dq, dk, dv });
  if (dh0) out.dh0 = dh0;
  if (dz0) out.dz0 = dz0;
  return out;
}

export const chunk: ReferenceImpl = {
  forward: (x, s, p) => run(x, s, p, false),
  backward: (x, s, p) => run(x, s, p, true),
};
