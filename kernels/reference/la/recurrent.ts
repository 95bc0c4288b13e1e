/**
 * Linear attention, token by token: S_t = S_{t-1} + φ(k_t)v_tᵀ, z_t = z_{t-1} + φ(k_t), and
 * o_t = φ(q_t)ᵀS_t / (φ(q_t)ᵀz_t + 1e-6), or scale·φ(q_t)ᵀS_t without normalization.
 * The backward is the hand-derived reverse sweep (docs/ops.md, section la).
 */
import type { OpParams, Shape } from "../../../bench/ops.ts";
import type { ReferenceImpl, RefInputs, RefOutputs } from "../types.ts";
import { sweep } from "../sweep.ts";

export const EPS = 1e-6;

/** φ(x) = elu(x) + 1. */
export function phi(x: number): number {
  return x > 0 ? x + 1 : Math.exp(x);
}

/** φ′(x). */
export function dphi(x: number): number {
  return x > 0 ? 1 : Math.exp(x);
}

function run(x: RefInputs, s: Shape, p: OpParams, grad: boolean): RefOutputs {
  const { B, T, H, K, V } = s;
  const q = x.q!, k = x.k!, v = x.v!, h0 = x.h0, z0 = x.z0, dout = x.do;
  const norm = p.normalize, scale = p.scale;
  const KV = K * V;
  const o = new Float64Array(B * T * H * V);
  const finalState = new Float64Array(B * H * KV);
  const finalZ = new Float64Array(B * H * K);
  const dq = grad ? new Float64Array(q.length) : undefined;
  const dk = grad ? new Float64Array(k.length) : undefined;
  const dv = grad ? new Float64Array(v.length) : undefined;
  const dh0 = grad && h0 ? new Float64Array(h0.length) : undefined;
  const dz0 = grad && z0 ? new Float64Array(z0.length) : undefined;

  // state = [S (K×V) | z (K)]
  const state = new Float64Array(KV + K);
  const fq = new Float64Array(K), num = new Float64Array(V);
  const dS = new Float64Array(KV), dz = new Float64Array(K);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      state.fill(0);
      if (h0) state.set(h0.subarray(bh * KV, (bh + 1) * KV));
      if (z0) state.set(z0.subarray(bh * K, (bh + 1) * K), KV);
      const kOff = (t: number) => ((b * T + t) * H + h) * K;
      const vOff = (t: number) => ((b * T + t) * H + h) * V;

      // Writes φ(q_t) into fq and the numerator φ(q_t)ᵀS_t into num; returns the denominator.
      const numerator = (t: number, st: Float64Array): number => {
        const qo = kOff(t);
        let den = EPS;
        for (let i = 0; i < K; i++) {
          fq[i] = phi(q[qo + i]);
          den += fq[i] * st[KV + i];
        }
        num.fill(0);
        for (let i = 0; i < K; i++) {
          const f = fq[i], r = i * V;
          for (let j = 0; j < V; j++) num[j] += f * st[r + j];
        }
        return den;
      };

      const step = (t: number, st: Float64Array, emit: boolean) => {
        const ko = kOff(t), vo = vOff(t);
        for (let i = 0; i < K; i++) {
          const f = phi(k[ko + i]), r = i * V;
          for (let j = 0; j < V; j++) st[r + j] += f * v[vo + j];
          st[KV + i] += f;
        }
        if (!emit) return;
        const den = numerator(t, st);
        const c = norm ? 1 / den : scale;
        for (let j = 0; j < V; j++) o[vo + j] = c * num[j];
      };

      // dS, dz: gradients w.r.t. S_t, z_t from the outputs at t' > t.
      const back = (t: number, _prev: Float64Array, cur: Float64Array) => {
        const ko = kOff(t), vo = vOff(t);
        const den = numerator(t, cur);
        // num becomes dℓ/dnum, dden = dℓ/dden.
        let dden = 0;
        if (norm) {
          for (let j = 0; j < V; j++) dden -= dout![vo + j] * num[j];
          dden /= den * den;
          for (let j = 0; j < V; j++) num[j] = dout![vo + j] / den;
        } else {
          for (let j = 0; j < V; j++) num[j] = scale * dout![vo + j];
        }
        for (let i = 0; i < K; i++) {
          const r = i * V;
          let dfq = dden * cur[KV + i];
          for (let j = 0; j < V; j++) {
            dfq += cur[r + j] * num[j];
            dS[r + j] += fq[i] * num[j];
          }
          dz[i] += dden * fq[i];
          dq![ko + i] = dfq * dphi(q[ko + i]);
        }
        for (let j = 0; j < V; j++) dv![vo + j] = 0;
        for (let i = 0; i < K; i++) {
          const r = i * V, f = phi(k[ko + i]);
          let dfk = dz[i];
          for (let j = 0; j < V; j++) {
            dfk += dS[r + j] * v[vo + j];
            dv![vo + j] += dS[r + j] * f;
          }
          dk![ko + i] = dfk * dphi(k[ko + i]);
        }
      };

      dS.fill(0);
      dz.fill(0);
      sweep(T, state, step, grad ? back : undefined);
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

export const recurrent: ReferenceImpl = {
  forward: (x, s, p) => run(x, s, p, false),
  backward: (x, s, p) => run(x, s, p, true),
};
