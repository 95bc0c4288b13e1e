/**
 * Causal softmax attention in the FlashAttention block algebra the GPU kernels use: queries
 * and keys in blocks of C = chunk_size, an online softmax across key blocks (running max m,
 * running sum l, accumulator rescaled by exp(m_old − m_new)) that stores the logsumexp, and a
 * backward that recomputes each P block from it with Dᵢ = rowsum(dOᵢ ⊙ Oᵢ).
 */
import type { ReferenceImpl } from "../types.ts";
import { type Attention, type AttentionEngine, softmaxImpl, visible } from "./direct.ts";

/** Block edges of n rows: the first `lead` rows alone (if any), then blocks of C. */
function edges(n: number, C: number, lead: number): number[] {
  const e = [0];
  if (lead > 0) e.push(lead);
  for (let x = lead + C; x < n; x += C) e.push(x);
  if (e[e.length - 1] !== n) e.push(n);
  return e;
}

/** Scaled scores of query rows [i0,i1) against keys [j0,j1), −∞ where masked. */
function scores(a: Attention, i0: number, i1: number, j0: number, j1: number): Float64Array {
  const { q, k, D, scale } = a;
  const bk = j1 - j0;
  const S = new Float64Array((i1 - i0) * bk);
  for (let i = i0; i < i1; i++) {
    const n = visible(a, i);
    for (let j = j0; j < j1; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q[i * D + d] * k[j * D + d];
      S[(i - i0) * bk + j - j0] = j < n ? scale * dot : -Infinity;
    }
  }
  return S;
}

export function flashEngine(C: number): AttentionEngine {
  return {
    forward(a) {
      const { v, nq, nk, D } = a;
      const o = new Float64Array(nq * D);
      const lse = new Float64Array(nq);
      const qe = edges(nq, C, 0), ke = edges(nk, C, a.lead);
      for (let qb = 0; qb + 1 < qe.length; qb++) {
        const i0 = qe[qb], i1 = qe[qb + 1], bq = i1 - i0;
        const m = new Float64Array(bq).fill(-Infinity);
        const l = new Float64Array(bq);
        const acc = new Float64Array(bq * D);
        for (let kb = 0; kb + 1 < ke.length; kb++) {
          const j0 = ke[kb], j1 = ke[kb + 1], bk = j1 - j0;
          // visibility grows with the row, so the block's last row sees the most
          if (j0 >= visible(a, i1 - 1)) break;
          const S = scores(a, i0, i1, j0, j1);
          for (let r = 0; r < bq; r++) {
            let mb = -Infinity;
            for (let c = 0; c < bk; c++) mb = Math.max(mb, S[r * bk + c]);
            if (mb === -Infinity) continue;
            const mNew = Math.max(m[r], mb);
            const alpha = Math.exp(m[r] - mNew);
            let rowsum = 0;
            for (let d = 0; d < D; d++) acc[r * D + d] *= alpha;
            for (let c = 0; c < bk; c++) {
              const p = Math.exp(S[r * bk + c] - mNew);
              rowsum += p;
              for (let d = 0; d < D; d++) acc[r * D + d] += p * v[(j0 + c) * D + d];
            }
            l[r] = alpha * l[r] + rowsum;
            m[r] = mNew;
          }
        }
        for (let r = 0; r < bq; r++) {
          for (let d = 0; d < D; d++) o[(i0 + r) * D + d] = acc[r * D + d] / l[r];
          lse[i0 + r] = m[r] + Math.log(l[r]);
        }
      }
      return { o, lse };
    },

    backward(a, o, lse, dO, dq, dk, dv) {
      const { q, k, v, nq, nk, D, scale } = a;
      const Di = new Float64Array(nq);
      for (let i = 0; i < nq; i++) {
        for (let d = 0; d < D; d++) Di[i] += dO[i * D + d] * o[i * D + d];
      }
      const qe = edges(nq, C, 0), ke = edges(nk, C, a.lead);
      // key blocks outermost, as in FlashAttention-2: dK, dV of a block finish in one pass
      for (let kb = 0; kb + 1 < ke.length; kb++) {
        const j0 = ke[kb], j1 = ke[kb + 1], bk = j1 - j0;
        for (let qb = 0; qb + 1 < qe.length; qb++) {
          const i0 = qe[qb], i1 = qe[qb + 1], bq = i1 - i0;
          if (j0 >= visible(a, i1 - 1)) continue;
          const P = scores(a, i0, i1, j0, j1);
          for (let r = 0; r < bq; r++) {
            for (let c = 0; c < bk; c++) P[r * bk + c] = Math.exp(P[r * bk + c] - lse[i0 + r]);
          }
          for (let c = 0; c < bk; c++) {
            for (let r = 0; r < bq; r++) {
              const p = P[r * bk + c];
              for (let d = 0; d < D; d++) dv[(j0 + c) * D + d] += p * dO[(i0 + r) * D + d];
            }
          }
          const dS = new Float64Array(bq * bk);
          for (let r = 0; r < bq; r++) {
            for (let c = 0; c < bk; c++) {
              let dp = 0;
              for (let d = 0; d < D; d++) dp += dO[(i0 + r) * D + d] * v[(j0 + c) * D + d];
              dS[r * bk + c] = P[r * bk + c] * (dp - Di[i0 + r]);
            }
          }
          for (let r = 0; r < bq; r++) {
            for (let c = 0; c < bk; c++) {
              const ds = scale * dS[r * bk + c];
              for (let d = 0; d < D; d++) {
                dq[(i0 + r) * D + d] += ds * k[(j0 + c) * D + d];
                dk[(j0 + c) * D + d] += ds * q[(i0 + r) * D + d];
              }
            }
          }
        }
      }
    },
  };
}

export const chunk: ReferenceImpl = softmaxImpl((p) => flashEngine(p.chunk_size));
