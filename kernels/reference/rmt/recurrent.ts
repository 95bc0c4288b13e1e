/**
 * Recurrent memory attention, the oracle form: per segment, softmax attention of the tokens
 * (causal) and of the memory rows (full) over [memory; segment], one row at a time. The
 * backward walks the memory chain from the last segment to the first, so dmem collects every
 * segment's influence. chunk.ts reuses the segment driver with the FlashAttention engine.
 */
import type { OpParams, Shape } from "../../../bench/ops.ts";
import type { ReferenceImpl, RefInputs, RefOutputs } from "../types.ts";
import {
  type Attention,
  type AttentionEngine,
  gather,
  rowEngine,
  scatter,
} from "../softmax/direct.ts";

interface Head {
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  mem: Float64Array;
}

function concatRows(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Segment s's token attention and memory update, keys and values [M_s; segment]. */
function segment(
  x: Head,
  mem: Float64Array,
  t0: number,
  t1: number,
  M: number,
  D: number,
  p: OpParams,
) {
  const k = concatRows(mem, x.k.subarray(t0 * D, t1 * D));
  const v = concatRows(mem, x.v.subarray(t0 * D, t1 * D));
  const nk = M + t1 - t0;
  const base = { k, v, nk, D, scale: p.scale, lead: M };
  const tok: Attention = { ...base, q: x.q.subarray(t0 * D, t1 * D), nq: t1 - t0, off: M };
  const upd: Attention = { ...base, q: mem, nq: M, off: nk };
  return { tok, upd };
}

export function rmtImpl(engineFor: (p: OpParams) => AttentionEngine): ReferenceImpl {
  const head = (x: RefInputs, s: Shape, b: number, h: number): Head => ({
    q: gather(x.q!, b, h, s.T, s.H, s.K),
    k: gather(x.k!, b, h, s.T, s.H, s.K),
    v: gather(x.v!, b, h, s.T, s.H, s.K),
    mem: gather(x.mem!, b, h, s.M, s.H, s.K),
  });

  /** o [T,D] and the memories M_0 … M_S of one head. */
  function run(e: AttentionEngine, x: Head, s: Shape, p: OpParams) {
    const D = s.K, L = p.segment_len;
    const o = new Float64Array(s.T * D);
    const mems = [x.mem];
    for (let t0 = 0; t0 < s.T; t0 += L) {
      const t1 = Math.min(t0 + L, s.T);
      const { tok, upd } = segment(x, mems[mems.length - 1], t0, t1, s.M, D, p);
      o.set(e.forward(tok).o, t0 * D);
      mems.push(e.forward(upd).o);
    }
    return { o, mems };
  }

  return {
    forward(x, s, p) {
      const e = engineFor(p);
      const o = new Float64Array(s.B * s.T * s.H * s.K);
      const final_state = new Float64Array(s.B * s.M * s.H * s.K);
      for (let b = 0; b < s.B; b++) {
        for (let h = 0; h < s.H; h++) {
          const r = run(e, head(x, s, b, h), s, p);
          scatter(r.o, o, b, h, s.T, s.H, s.K);
          scatter(r.mems[r.mems.length - 1], final_state, b, h, s.M, s.H, s.K);
        }
      }
      return { o, final_state };
    },

    backward(x, s, p) {
      const e = engineFor(p);
      const D = s.K, L = p.segment_len, M = s.M;
      const nTok = s.B * s.T * s.H * D, nMem = s.B * M * s.H * D;
      const out: RefOutputs = {
        o: new Float64Array(nTok),
        final_state: new Float64Array(nMem),
        dq: new Float64Array(nTok),
        dk: new Float64Array(nTok),
        dv: new Float64Array(nTok),
        dmem: new Float64Array(nMem),
      };
      for (let b = 0; b < s.B; b++) {
        for (let h = 0; h < s.H; h++) {
          const x1 = head(x, s, b, h);
          const dO = gather(x.do!, b, h, s.T, s.H, D);
          const { o, mems } = run(e, x1, s, p);
          const dq = new Float64Array(s.T * D), dk = new Float64Array(s.T * D);
          const dv = new Float64Array(s.T * D);
          // final_state is not in the loss, so the chain starts from a zero gradient
          let dMem = new Float64Array(M * D);
          for (let sg = mems.length - 2; sg >= 0; sg--) {
            const t0 = sg * L, t1 = Math.min(t0 + L, s.T);
            const { tok, upd } = segment(x1, mems[sg], t0, t1, M, D, p);
            const dK = new Float64Array(tok.nk * D), dV = new Float64Array(tok.nk * D);
            const dQm = new Float64Array(M * D);
            const ft = e.forward(tok), fu = e.forward(upd);
            e.backward(
              tok,
              ft.o,
              ft.lse,
              dO.subarray(t0 * D, t1 * D),
              dq.subarray(t0 * D, t1 * D),
              dK,
              dV,
            );
            e.backward(upd, fu.o, fu.lse, dMem, dQm, dK, dV);
            // M_s is the update's query and the first M keys and values of both attentions
            for (let i = 0; i < M * D; i++) dQm[i] += dK[i] + dV[i];
            dMem = dQm;
            dk.set(dK.subarray(M * D), t0 * D);
            dv.set(dV.subarray(M * D), t0 * D);
          }
          scatter(o, out.o!, b, h, s.T, s.H, D);
          scatter(mems[mems.length - 1], out.final_state!, b, h, M, s.H, D);
          scatter(dq, out.dq!, b, h, s.T, s.H, D);
          scatter(dk, out.dk!, b, h, s.T, s.H, D);
          scatter(dv, out.dv!, b, h, s.T, s.H, D);
          scatter(dMem, out.dmem!, b, h, M, s.H, D);
        }
      }
      return out;
    },
  };
}

export const recurrent: ReferenceImpl = rmtImpl(() => rowEngine);
