/**
 * DeltaNet, token by token: with q, k l2-normalized when qk_l2norm,
 * S_t = S_{t-1} + β_t k_t (v_t − S_{t-1}ᵀk_t)ᵀ and o_t = scale·S_tᵀq_t.
 * The backward is the hand-derived reverse sweep (docs/ops.md, section deltanet).
 */
import type { OpParams, Shape } from "../../../bench/ops.ts";
import type { ReferenceImpl, RefInputs, RefOutputs } from "../types.ts";
import { l2normalize, l2normalizeBackward } from "../linalg.ts";
import { sweep } from "../sweep.ts";

function run(x: RefInputs, s: Shape, p: OpParams, grad: boolean): RefOutputs {
  const { B, T, H, K, V } = s;
  const q = x.q!, k = x.k!, v = x.v!, beta = x.beta!, h0 = x.h0, dout = x.do;
  const scale = p.scale, l2 = p.qk_l2norm;
  const KV = K * V;
  const o = new Float64Array(B * T * H * V);
  const finalState = new Float64Array(B * H * KV);
  const dq = grad ? new Float64Array(q.length) : undefined;
  const dk = grad ? new Float64Array(k.length) : undefined;
  const dv = grad ? new Float64Array(v.length) : undefined;
  const dbeta = grad ? new Float64Array(beta.length) : undefined;
  const dh0 = grad && h0 ? new Float64Array(h0.length) : undefined;

  const state = new Float64Array(KV), dS = new Float64Array(KV);
  const qn = new Float64Array(K), kn = new Float64Array(K);
  const u = new Float64Array(V), du = new Float64Array(V);
  // Loads q or k at offset o into dst, normalized when qk_l2norm; returns the divisor.
  const load = (src: Float64Array, o: number, dst: Float64Array): number => {
    if (l2) return l2normalize(src, o, K, dst, 0);
    dst.set(src.subarray(o, o + K));
    return 1;
  };
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      state.fill(0);
      if (h0) state.set(h0.subarray(bh * KV, (bh + 1) * KV));
      const kOff = (t: number) => ((b * T + t) * H + h) * K;
      const vOff = (t: number) => ((b * T + t) * H + h) * V;

      // u = v_t − S_{t-1}ᵀk_t for the normalized key already in kn.
      const residual = (vo: number, st: Float64Array) => {
        for (let j = 0; j < V; j++) u[j] = v[vo + j];
        for (let i = 0; i < K; i++) {
          const ki = kn[i], r = i * V;
          for (let j = 0; j < V; j++) u[j] -= st[r + j] * ki;
        }
      };

      const step = (t: number, st: Float64Array, emit: boolean) => {
        const ko = kOff(t), vo = vOff(t), bt = beta[(b * T + t) * H + h];
        load(k, ko, kn);
        residual(vo, st);
        for (let i = 0; i < K; i++) {
          const c = bt * kn[i], r = i * V;
          for (let j = 0; j < V; j++) st[r + j] += c * u[j];
        }
        if (!emit) return;
        load(q, ko, qn);
        for (let j = 0; j < V; j++) o[vo + j] = 0;
        for (let i = 0; i < K; i++) {
          const c = scale * qn[i], r = i * V;
          for (let j = 0; j < V; j++) o[vo + j] += c * st[r + j];
        }
      };

      // dS: gradient w.r.t. S_t from the outputs at t' > t.
      const back = (t: number, prev: Float64Array, cur: Float64Array) => {
        const ko = kOff(t), vo = vOff(t), bi = (b * T + t) * H + h, bt = beta[bi];
        const qNorm = load(q, ko, qn), kNorm = load(k, ko, kn);
        residual(vo, prev);
        // dS += scale·q dᵀ; dq = scale·S_t d; w = dSᵀk (kept in du, then du = β·w)
        du.fill(0);
        for (let i = 0; i < K; i++) {
          const r = i * V, c = scale * qn[i], ki = kn[i];
          let dqi = 0;
          for (let j = 0; j < V; j++) {
            const d = dout![vo + j];
            dqi += cur[r + j] * d;
            dS[r + j] += c * d;
            du[j] += dS[r + j] * ki;
          }
          dq![ko + i] = scale * dqi;
        }
        let db = 0;
        for (let j = 0; j < V; j++) {
          db += du[j] * u[j];
          du[j] *= bt;
          dv![vo + j] = du[j];
        }
        dbeta![bi] = db;
        // dk = β·dS u − S_{t-1} du; then dS_{t-1} = dS − k duᵀ
        for (let i = 0; i < K; i++) {
          const r = i * V, ki = kn[i];
          let a = 0, c = 0;
          for (let j = 0; j < V; j++) {
            a += dS[r + j] * u[j];
            c += prev[r + j] * du[j];
            dS[r + j] -= ki * du[j];
          }
          dk![ko + i] = bt * a - c;
        }
        if (l2) {
          l2normalizeBackward(qn, 0, qNorm, K, dq!, ko);
          l2normalizeBackward(kn, 0, kNorm, K, dk!, ko);
        }
      };

      dS.fill(0);
      sweep(T, state, step, grad ? back : undefined);
      finalState.set(state, bh * KV);
      if (dh0) dh0.set(dS, bh * KV);
    }
  }
  const out: RefOutputs = { o, final_state: finalState };
  if (grad) Object.assign(out, { dq, dk, dv, dbeta });
  if (dh0) out.dh0 = dh0;
  return out;
}

export const recurrent: ReferenceImpl = {
  forward: (x, s, p) => run(x, s, p, false),
  backward: (x, s, p) => run(x, s, p, true),
};
