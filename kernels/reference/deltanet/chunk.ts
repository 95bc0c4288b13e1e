/**
 * DeltaNet in chunks of C = chunk_size tokens with the WY/UT transform the GPU kernels use:
 * the chunk's C sequential rank-one updates collapse into one triangular solve,
 * T = (I + tril(diag(β)KKᵀ, −1))⁻¹·diag(β), W = T·K, U = T·V, so that the chunk adds
 * Kᵀ·(U − W·S_prev) to the state. Same function as ./recurrent.ts.
 */
import type { OpParams, Shape } from "../../../bench/ops.ts";
import type { ReferenceImpl, RefInputs, RefOutputs } from "../types.ts";
import {
  gatherRows,
  gemm,
  l2normalize,
  l2normalizeBackward,
  scatterRows,
  trilInPlace,
  unitLowerInverse,
} from "../linalg.ts";
import { sweep } from "../sweep.ts";

function run(x: RefInputs, s: Shape, p: OpParams, grad: boolean): RefOutputs {
  const { B, T, H, K, V } = s;
  const q = x.q!, k = x.k!, v = x.v!, beta = x.beta!, h0 = x.h0, dout = x.do;
  const scale = p.scale, l2 = p.qk_l2norm;
  const C = Math.min(p.chunk_size, T), nChunks = Math.ceil(T / p.chunk_size);
  const KV = K * V;
  const o = new Float64Array(B * T * H * V);
  const finalState = new Float64Array(B * H * KV);
  const dq = grad ? new Float64Array(q.length) : undefined;
  const dk = grad ? new Float64Array(k.length) : undefined;
  const dv = grad ? new Float64Array(v.length) : undefined;
  const dbeta = grad ? new Float64Array(beta.length) : undefined;
  const dh0 = grad && h0 ? new Float64Array(h0.length) : undefined;

  const state = new Float64Array(KV), dS = new Float64Array(KV);
  const CK = C * K, CV = C * V, CC = C * C;
  const Q = new Float64Array(CK), Kc = new Float64Array(CK), Vc = new Float64Array(CV);
  const bet = new Float64Array(C), qNorm = new Float64Array(C), kNorm = new Float64Array(C);
  const KKt = new Float64Array(CC), Am = new Float64Array(CC), N = new Float64Array(CC);
  const Tm = new Float64Array(CC), W = new Float64Array(CK), U = new Float64Array(CV);
  const Vn = new Float64Array(CV), O = new Float64Array(CV), P = new Float64Array(CC);
  const dO = new Float64Array(CV), dVn = new Float64Array(CV), dP = new Float64Array(CC);
  const dQ = new Float64Array(CK), dK = new Float64Array(CK), dW = new Float64Array(CK);
  const dT = new Float64Array(CC), X = new Float64Array(CC), dA = new Float64Array(CC);
  const dVc = new Float64Array(CV), dbet = new Float64Array(C);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      state.fill(0);
      if (h0) state.set(h0.subarray(bh * KV, (bh + 1) * KV));
      const kBase = (b * T * H + h) * K, vBase = (b * T * H + h) * V;
      const bBase = b * T * H + h;

      // Loads chunk ci (q, k normalized when qk_l2norm) and builds T, W, U and
      // V_new = U − W·S_prev; returns the chunk length.
      const prepare = (ci: number, prev: Float64Array): number => {
        const t0 = ci * C, c = Math.min(C, T - t0);
        for (let i = 0; i < c; i++) {
          const o = kBase + (t0 + i) * H * K;
          if (l2) {
            qNorm[i] = l2normalize(q, o, K, Q, i * K);
            kNorm[i] = l2normalize(k, o, K, Kc, i * K);
          } else {
            Q.set(q.subarray(o, o + K), i * K);
            Kc.set(k.subarray(o, o + K), i * K);
          }
          bet[i] = beta[bBase + (t0 + i) * H];
        }
        gatherRows(v, vBase + t0 * H * V, H * V, c, V, Vc);
        gemm(c, c, K, 1, Kc, false, Kc, true, KKt);
        for (let i = 0; i < c; i++) {
          for (let j = 0; j < c; j++) Am[i * c + j] = j < i ? bet[i] * KKt[i * c + j] : 0;
        }
        unitLowerInverse(Am, c, N);
        for (let i = 0; i < c; i++) {
          for (let j = 0; j < c; j++) Tm[i * c + j] = N[i * c + j] * bet[j];
        }
        gemm(c, K, c, 1, Tm, false, Kc, false, W);
        gemm(c, V, c, 1, Tm, false, Vc, false, U);
        Vn.set(U.subarray(0, c * V));
        gemm(c, V, K, -1, W, false, prev, false, Vn, true);
        gemm(c, c, K, 1, Q, false, Kc, true, P);
        trilInPlace(P, c, false);
        return c;
      };

      const step = (ci: number, st: Float64Array, emit: boolean) => {
        const c = prepare(ci, st);
        if (emit) {
          gemm(c, V, K, scale, Q, false, st, false, O);
          gemm(c, V, c, scale, P, false, Vn, false, O, true);
          scatterRows(O, c, V, o, vBase + ci * C * H * V, H * V);
        }
        gemm(K, V, c, 1, Kc, true, Vn, false, st, true);
      };

      // dS: gradient w.r.t. the state after chunk ci.
      const back = (ci: number, prev: Float64Array, _cur: Float64Array) => {
        const c = prepare(ci, prev);
        gatherRows(dout!, vBase + ci * C * H * V, H * V, c, V, dO);
        // Output and state update: O = scale·(Q·S + P·V_new), S_new = S + Kᵀ·V_new.
        gemm(c, V, c, scale, P, true, dO, false, dVn);
        gemm(c, V, K, 1, Kc, false, dS, false, dVn, true);
        gemm(c, c, V, scale, dO, false, Vn, true, dP);
        trilInPlace(dP, c, false);
        gemm(c, K, V, scale, dO, false, prev, true, dQ);
        gemm(c, K, c, 1, dP, false, Kc, false, dQ, true);
        gemm(c, K, c, 1, dP, true, Q, false, dK);
        gemm(c, K, V, 1, Vn, false, dS, true, dK, true);
        // V_new = U − W·S_prev
        gemm(K, V, c, scale, Q, true, dO, false, dS, true);
        gemm(K, V, c, -1, W, true, dVn, false, dS, true);
        gemm(c, K, V, -1, dVn, false, prev, true, dW);
        // U = T·V, W = T·K
        gemm(c, c, V, 1, dVn, false, Vc, true, dT);
        gemm(c, c, K, 1, dW, false, Kc, true, dT, true);
        gemm(c, V, c, 1, Tm, true, dVn, false, dVc);
        gemm(c, K, c, 1, Tm, true, dW, false, dK, true);
        // T = N·diag(β) with N = (I + A)⁻¹: dβ_j = Σ_r N_rj dT_rj, dA = −Nᵀ·dT·Tᵀ (strict lower)
        gemm(c, c, c, 1, N, true, dT, false, X);
        gemm(c, c, c, -1, X, false, Tm, true, dA);
        for (let j = 0; j < c; j++) {
          let acc = 0;
          for (let r = 0; r < c; r++) acc += N[r * c + j] * dT[r * c + j];
          dbet[j] = acc;
        }
        // A = tril(diag(β)·K·Kᵀ, −1): dβ_i += Σ_{j<i} dA_ij (k_i·k_j); dA becomes diag(β)·dA.
        for (let i = 0; i < c; i++) {
          let acc = 0;
          for (let j = 0; j < c; j++) {
            if (j < i) {
              acc += dA[i * c + j] * KKt[i * c + j];
              dA[i * c + j] *= bet[i];
            } else dA[i * c + j] = 0;
          }
          dbet[i] += acc;
        }
        gemm(c, K, c, 1, dA, false, Kc, false, dK, true);
        gemm(c, K, c, 1, dA, true, Kc, false, dK, true);
        const kOff = kBase + ci * C * H * K;
        if (l2) {
          for (let i = 0; i < c; i++) {
            l2normalizeBackward(Q, i * K, qNorm[i], K, dQ, i * K);
            l2normalizeBackward(Kc, i * K, kNorm[i], K, dK, i * K);
          }
        }
        scatterRows(dQ, c, K, dq!, kOff, H * K);
        scatterRows(dK, c, K, dk!, kOff, H * K);
        scatterRows(dVc, c, V, dv!, vBase + ci * C * H * V, H * V);
        for (let i = 0; i < c; i++) dbeta![bBase + (ci * C + i) * H] = dbet[i];
      };

      dS.fill(0);
      sweep(nChunks, state, step, grad ? back : undefined);
      finalState.set(state, bh * KV);
      if (dh0) dh0.set(dS, bh * KV);
    }
  }
  const out: RefOutputs = { o, final_state: finalState };
  if (grad) Object.assign(out, { dq, dk, dv, dbeta });
  if (dh0) out.dh0 = dh0;
  return out;
}

export const chunk: ReferenceImpl = {
  forward: (x, s, p) => run(x, s, p, false),
  backward: (x, s, p) => run(x, s, p, true),
};
