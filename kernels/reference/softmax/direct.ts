/**
 * Causal softmax attention, the oracle form: each query row sees its whole visible key range
 * at once (max, exp-sum, weighted sum), one row at a time so that no T×T matrix is ever held.
 * Also home of the per-head plumbing and the attention-engine interface that rmt reuses: rmt
 * is this same attention over a segment with the memory rows prepended to the keys.
 */
import type { OpParams, Shape } from "../../../bench/ops.ts";
import type { ReferenceImpl, RefInputs, RefOutputs } from "../types.ts";

/**
 * One attention problem for one (batch, head): q is [nq,D], k and v are [nk,D] packed.
 * Query row i sees keys j < min(nk, off + i + 1), so off = nk means no mask. The first `lead`
 * keys form a block of their own (rmt's memory rows), which only the chunked engine uses.
 */
export interface Attention {
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  nq: number;
  nk: number;
  D: number;
  scale: number;
  off: number;
  lead: number;
}

export interface AttentionEngine {
  /** o [nq,D] and the per-row logsumexp of the scaled, masked scores. */
  forward(a: Attention): { o: Float64Array; lse: Float64Array };
  /** Adds the gradients of Σ(o ⊙ dO) into dq, dk, dv (zeroing is the caller's job). */
  backward(
    a: Attention,
    o: Float64Array,
    lse: Float64Array,
    dO: Float64Array,
    dq: Float64Array,
    dk: Float64Array,
    dv: Float64Array,
  ): void;
}

/** Rows n of one (b,h) pair from a [B,N,H,D] array, packed as [N,D]. */
export function gather(x: Float64Array, b: number, h: number, N: number, H: number, D: number) {
  const out = new Float64Array(N * D);
  for (let n = 0; n < N; n++) {
    const src = ((b * N + n) * H + h) * D;
    out.set(x.subarray(src, src + D), n * D);
  }
  return out;
}

/** Inverse of `gather`: writes packed [N,D] rows back into a [B,N,H,D] array. */
export function scatter(
  rows: Float64Array,
  x: Float64Array,
  b: number,
  h: number,
  N: number,
  H: number,
  D: number,
): void {
  for (let n = 0; n < N; n++) {
    x.set(rows.subarray(n * D, (n + 1) * D), ((b * N + n) * H + h) * D);
  }
}

export function visible(a: Attention, i: number): number {
  return Math.min(a.nk, a.off + i + 1);
}

/** Row-at-a-time attention: the definition, with max subtraction for range only. */
export const rowEngine: AttentionEngine = {
  forward(a) {
    const { q, k, v, nq, D, scale } = a;
    const o = new Float64Array(nq * D);
    const lse = new Float64Array(nq);
    const s = new Float64Array(a.nk);
    for (let i = 0; i < nq; i++) {
      const n = visible(a, i);
      const qi = i * D;
      let m = -Infinity;
      for (let j = 0; j < n; j++) {
        const kj = j * D;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[qi + d] * k[kj + d];
        s[j] = scale * dot;
        if (s[j] > m) m = s[j];
      }
      let l = 0;
      for (let j = 0; j < n; j++) {
        const p = Math.exp(s[j] - m);
        l += p;
        const vj = j * D;
        for (let d = 0; d < D; d++) o[qi + d] += p * v[vj + d];
      }
      for (let d = 0; d < D; d++) o[qi + d] /= l;
      lse[i] = m + Math.log(l);
    }
    return { o, lse };
  },

  // With P = softmax(S): dV = PᵀdO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)),
  // dQ = scale·dS K, dK = scale·dSᵀ Q; P is recomputed per row from the logsumexp.
  backward(a, o, lse, dO, dq, dk, dv) {
    const { q, k, v, nq, D, scale } = a;
    for (let i = 0; i < nq; i++) {
      const n = visible(a, i);
      const qi = i * D;
      let di = 0;
      for (let d = 0; d < D; d++) di += dO[qi + d] * o[qi + d];
      for (let j = 0; j < n; j++) {
        const kj = j * D;
        let dot = 0, dp = 0;
        for (let d = 0; d < D; d++) {
          dot += q[qi + d] * k[kj + d];
          dp += dO[qi + d] * v[kj + d];
        }
        const p = Math.exp(scale * dot - lse[i]);
        const ds = scale * p * (dp - di);
        for (let d = 0; d < D; d++) {
          dq[qi + d] += ds * k[kj + d];
          dk[kj + d] += ds * q[qi + d];
          dv[kj + d] += p * dO[qi + d];
        }
      }
    }
  },
};

/** Causal softmax attention per (b,h) on top of an engine; chunk.ts swaps the engine. */
export function softmaxImpl(engineFor: (p: OpParams) => AttentionEngine): ReferenceImpl {
  const problem = (x: RefInputs, s: Shape, p: OpParams, b: number, h: number): Attention => ({
    q: gather(x.q!, b, h, s.T, s.H, s.K),
    k: gather(x.k!, b, h, s.T, s.H, s.K),
    v: gather(x.v!, b, h, s.T, s.H, s.K),
    nq: s.T,
    nk: s.T,
    D: s.K,
    scale: p.scale,
    off: 0,
    lead: 0,
  });
  return {
    forward(x, s, p) {
      const engine = engineFor(p);
      const o = new Float64Array(s.B * s.T * s.H * s.K);
      for (let b = 0; b < s.B; b++) {
        for (let h = 0; h < s.H; h++) {
          scatter(engine.forward(problem(x, s, p, b, h)).o, o, b, h, s.T, s.H, s.K);
        }
      }
      return { o };
    },
    backward(x, s, p) {
      const engine = engineFor(p);
      const n = s.B * s.T * s.H * s.K;
      const out: RefOutputs = {
        o: new Float64Array(n),
        dq: new Float64Array(n),
        dk: new Float64Array(n),
        dv: new Float64Array(n),
      };
      const len = s.T * s.K;
      for (let b = 0; b < s.B; b++) {
        for (let h = 0; h < s.H; h++) {
          const a = problem(x, s, p, b, h);
          const { o, lse } = engine.forward(a);
          const dq = new Float64Array(len), dk = new Float64Array(len), dv = new Float64Array(len);
          engine.backward(a, o, lse, gather(x.do!, b, h, s.T, s.H, s.K), dq, dk, dv);
          scatter(o, out.o!, b, h, s.T, s.H, s.K);
          scatter(dq, out.dq!, b, h, s.T, s.H, s.K);
          scatter(dk, out.dk!, b, h, s.T, s.H, s.K);
          scatter(dv, out.dv!, b, h, s.T, s.H, s.K);
        }
      }
      return out;
    },
  };
}

export const direct: ReferenceImpl = softmaxImpl(() => rowEngine);
