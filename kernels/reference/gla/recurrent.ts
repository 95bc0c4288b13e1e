/**
 * Gated linear attention, token by token: S_t = diag(exp(g_t))S_{t-1} + k_t v_tᵀ and
 * o_t = scale·S_tᵀq_t. The backward is the hand-derived reverse sweep (docs/ops.md, section gla).
 */
import type { OpParams, Shape } from "../../../bench/ops.ts";
import type { ReferenceImpl, RefInputs, RefOutputs } from "../types.ts";
import { sweep } from "../sweep.ts";

function run(x: RefInputs, s: Shape, p: OpParams, grad: boolean): RefOutputs {
  const { B, T, H, K, V } = s;
  const q = x.q!, k = x.k!, v = x.v!, g = x.g!, h0 = x.h0, dout = x.do;
  const scale = p.scale;
  const KV = K * V;
  const o = new Float64Array(B * T * H * V);
  const finalState = new Float64Array(B * H * KV);
  const dq = grad ? new Float64Array(q.length) : undefined;
  const dk = grad ? new Float64Array(k.length) : undefined;
  const dv = grad ? new Float64Array(v.length) : undefined;
  const dg = grad ? new Float64Array(g.length) : undefined;
  const dh0 = grad && h0 ? new Float64Array(h0.length) : undefined;

  const state = new Float64Array(KV);
  const dS = new Float64Array(KV);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      state.fill(0);
      if (h0) state.set(h0.subarray(bh * KV, (bh + 1) * KV));
      const kOff = (t: number) => ((b * T + t) * H + h) * K;
      const vOff = (t: number) => ((b * T + t) * H + h) * V;

      const step = (t: number, st: Float64Array, emit: boolean) => {
        const ko = kOff(t), vo = vOff(t);
        for (let i = 0; i < K; i++) {
          const a = Math.exp(g[ko + i]), ki = k[ko + i], r = i * V;
          for (let j = 0; j < V; j++) st[r + j] = a * st[r + j] + ki * v[vo + j];
        }
        if (!emit) return;
        for (let j = 0; j < V; j++) o[vo + j] = 0;
        for (let i = 0; i < K; i++) {
          const c = scale * q[ko + i], r = i * V;
          for (let j = 0; j < V; j++) o[vo + j] += c * st[r + j];
        }
      };

      // dS: gradient w.r.t. S_t from the outputs at t' > t.
      const back = (t: number, prev: Float64Array, cur: Float64Array) => {
        const ko = kOff(t), vo = vOff(t);
        for (let j = 0; j < V; j++) dv![vo + j] = 0;
        for (let i = 0; i < K; i++) {
          const r = i * V, qi = scale * q[ko + i], ki = k[ko + i], a = Math.exp(g[ko + i]);
          let dqi = 0, dki = 0, dgi = 0;
          for (let j = 0; j < V; j++) {
            const d = dout![vo + j];
            dqi += cur[r + j] * d;
            const ds = dS[r + j] + qi * d;
            dki += ds * v[vo + j];
            dv![vo + j] += ds * ki;
            dgi += ds * prev[r + j];
            dS[r + j] = a * ds;
          }
          dq![ko + i] = scale * dqi;
          dk![ko + i] = dki;
          dg![ko + i] = a * dgi;
        }
      };

      dS.fill(0);
      sweep(T, state, step, grad ? back : undefined);
      finalState.set(state, bh * KV);
      if (dh0) dh0.set(dS, bh * KV);
    }
  }
  const out: RefOutputs = { o, final_state: finalState };
  if (grad) Object.assign(out, { dq, dk, dv, dg });
  if (dh0) out.dh0 = dh0;
  return out;
}

export const recurrent: ReferenceImpl = {
  forward: (x, s, p) => run(x, s, p, false),
  backward: (x, s, p) => run(x, s, p, true),
};
