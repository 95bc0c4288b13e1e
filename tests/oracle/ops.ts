/**
 * The five ops written straight from the math in docs/ops.md on autodiff scalars, one
 * (batch, head) pair and one time step at a time. Shares no code with kernels/reference.
 */
import type { InputName, OpParams, OutputName, Shape, Variant } from "../../bench/ops.ts";
import { type Node, Tape } from "./autodiff.ts";
import type { RefOutputs } from "../../kernels/reference/types.ts";

export type AdInputs = Partial<Record<InputName, Node[]>>;
export type AdOutputs = Partial<Record<OutputName, Node[]>>;
type Mat = Node[][];

/** Row (b, t, h) of a [B,N,H,D] array. */
function row(x: Node[], b: number, t: number, h: number, N: number, H: number, D: number) {
  const at = ((b * N + t) * H + h) * D;
  return x.slice(at, at + D);
}

function put(out: Node[], rows: Node[], b: number, t: number, h: number, N: number, H: number) {
  const D = rows.length;
  rows.forEach((r, d) => (out[((b * N + t) * H + h) * D + d] = r));
}

/** The K×V state of (b, h) from h0 [B,H,K,V], or zeros. */
function initState(tp: Tape, h0: Node[] | undefined, b: number, h: number, s: Shape): Mat {
  return Array.from(
    { length: s.K },
    (_, i) =>
      Array.from(
        { length: s.V },
        (_, j) => h0 ? h0[((b * s.H + h) * s.K + i) * s.V + j] : tp.leaf(0),
      ),
  );
}

function putState(out: Node[], S: Mat, b: number, h: number, s: Shape) {
  S.forEach((r, i) => r.forEach((x, j) => (out[((b * s.H + h) * s.K + i) * s.V + j] = x)));
}

/** yⱼ = Σᵢ xᵢ Sᵢⱼ. */
function vecMat(tp: Tape, x: Node[], S: Mat): Node[] {
  return S[0].map((_, j) => tp.sum(x.map((xi, i) => tp.mul(xi, S[i][j]))));
}

function l2n(tp: Tape, x: Node[]): Node[] {
  const n = tp.sqrt(tp.shift(tp.dot(x, x), 1e-6));
  return x.map((xi) => tp.div(xi, n));
}

/** softmax(scale · q Kᵀ) V over the given key and value rows. */
function attend(tp: Tape, q: Node[], keys: Node[][], vals: Node[][], scale: number): Node[] {
  const w = tp.softmax(keys.map((k) => tp.scale(tp.dot(q, k), scale)));
  return vals[0].map((_, d) => tp.sum(vals.map((v, j) => tp.mul(w[j], v[d]))));
}

type Op = (tp: Tape, x: AdInputs, s: Shape, p: OpParams) => AdOutputs;

const la: Op = (tp, x, s, p) => {
  const o: Node[] = [], fs: Node[] = [], fz: Node[] = [];
  for (let b = 0; b < s.B; b++) {
    for (let h = 0; h < s.H; h++) {
      const S = initState(tp, x.h0, b, h, s);
      let z = Array.from(
        { length: s.K },
        (_, i) => x.z0 ? x.z0[(b * s.H + h) * s.K + i] : tp.leaf(0),
      );
      for (let t = 0; t < s.T; t++) {
        const fq = row(x.q!, b, t, h, s.T, s.H, s.K).map((e) => tp.elu1(e));
        const fk = row(x.k!, b, t, h, s.T, s.H, s.K).map((e) => tp.elu1(e));
        const v = row(x.v!, b, t, h, s.T, s.H, s.V);
        for (let i = 0; i < s.K; i++) {
          for (let j = 0; j < s.V; j++) S[i][j] = tp.add(S[i][j], tp.mul(fk[i], v[j]));
        }
        z = z.map((zi, i) => tp.add(zi, fk[i]));
        const num = vecMat(tp, fq, S);
        const den = p.normalize ? tp.shift(tp.dot(fq, z), 1e-6) : undefined;
        put(
          o,
          num.map((n) => den ? tp.div(n, den) : tp.scale(n, p.scale)),
          b,
          t,
          h,
          s.T,
          s.H,
        );
      }
      putState(fs, S, b, h, s);
      z.forEach((zi, i) => (fz[(b * s.H + h) * s.K + i] = zi));
    }
  }
  return p.normalize ? { o, final_state: fs, final_z: fz } : { o, final_state: fs };
};

const gla: Op = (tp, x, s, p) => {
  const o: Node[] = [], fs: Node[] = [];
  for (let b = 0; b < s.B; b++) {
    for (let h = 0; h < s.H; h++) {
      const S = initState(tp, x.h0, b, h, s);
      for (let t = 0; t < s.T; t++) {
        const q = row(x.q!, b, t, h, s.T, s.H, s.K), k = row(x.k!, b, t, h, s.T, s.H, s.K);
        const g = row(x.g!, b, t, h, s.T, s.H, s.K), v = row(x.v!, b, t, h, s.T, s.H, s.V);
        for (let i = 0; i < s.K; i++) {
          const decay = tp.exp(g[i]);
          for (let j = 0; j < s.V; j++) {
            S[i][j] = tp.add(tp.mul(decay, S[i][j]), tp.mul(k[i], v[j]));
          }
        }
        put(o, vecMat(tp, q, S).map((e) => tp.scale(e, p.scale)), b, t, h, s.T, s.H);
      }
      putState(fs, S, b, h, s);
    }
  }
  return { o, final_state: fs };
};

const deltanet: Op = (tp, x, s, p) => {
  const o: Node[] = [], fs: Node[] = [];
  for (let b = 0; b < s.B; b++) {
    for (let h = 0; h < s.H; h++) {
      const S = initState(tp, x.h0, b, h, s);
      for (let t = 0; t < s.T; t++) {
        let q = row(x.q!, b, t, h, s.T, s.H, s.K), k = row(x.k!, b, t, h, s.T, s.H, s.K);
        if (p.qk_l2norm) [q, k] = [l2n(tp, q), l2n(tp, k)];
        const v = row(x.v!, b, t, h, s.T, s.H, s.V);
        const beta = x.beta![(b * s.T + t) * s.H + h];
        const u = vecMat(tp, k, S).map((sk, j) => tp.sub(v[j], sk));
        for (let i = 0; i < s.K; i++) {
          const bk = tp.mul(beta, k[i]);
          for (let j = 0; j < s.V; j++) S[i][j] = tp.add(S[i][j], tp.mul(bk, u[j]));
        }
        put(o, vecMat(tp, q, S).map((e) => tp.scale(e, p.scale)), b, t, h, s.T, s.H);
      }
      putState(fs, S, b, h, s);
    }
  }
  return { o, final_state: fs };
};

const rmt: Op = (tp, x, s, p) => {
  const o: Node[] = [], fs: Node[] = [];
  const D = s.K, L = p.segment_len;
  for (let b = 0; b < s.B; b++) {
    for (let h = 0; h < s.H; h++) {
      let mem = Array.from({ length: s.M }, (_, r) => row(x.mem!, b, r, h, s.M, s.H, D));
      for (let t0 = 0; t0 < s.T; t0 += L) {
        const ts = Array.from({ length: Math.min(L, s.T - t0) }, (_, i) => t0 + i);
        const keys = [...mem, ...ts.map((t) => row(x.k!, b, t, h, s.T, s.H, D))];
        const vals = [...mem, ...ts.map((t) => row(x.v!, b, t, h, s.T, s.H, D))];
        ts.forEach((t, i) => {
          const q = row(x.q!, b, t, h, s.T, s.H, D);
          const n = s.M + i + 1;
          put(o, attend(tp, q, keys.slice(0, n), vals.slice(0, n), p.scale), b, t, h, s.T, s.H);
        });
        mem = mem.map((m) => attend(tp, m, keys, vals, p.scale));
      }
      mem.forEach((m, r) => put(fs, m, b, r, h, s.M, s.H));
    }
  }
  return { o, final_state: fs };
};

const softmax: Op = (tp, x, s, p) => {
  const o: Node[] = [];
  const D = s.K;
  for (let b = 0; b < s.B; b++) {
    for (let h = 0; h < s.H; h++) {
      const keys = Array.from({ length: s.T }, (_, t) => row(x.k!, b, t, h, s.T, s.H, D));
      const vals = Array.from({ length: s.T }, (_, t) => row(x.v!, b, t, h, s.T, s.H, D));
      for (let t = 0; t < s.T; t++) {
        const q = row(x.q!, b, t, h, s.T, s.H, D);
        put(
          o,
          attend(tp, q, keys.slice(0, t + 1), vals.slice(0, t + 1), p.scale),
          b,
          t,
          h,
          s.T,
          s.H,
        );
      }
    }
  }
  return { o };
};

export const ORACLE_OPS: Record<Variant, Op> = { la, gla, deltanet, rmt, softmax };

/** The oracle's forward outputs and the gradient of Σ(o ⊙ do) for every input but do. */
export function adOracle(
  v: Variant,
  shape: Shape,
  x: Record<string, Float64Array>,
  p: OpParams,
): RefOutputs {
  const tp = new Tape();
  const ad: AdInputs = {};
  const names = Object.keys(x).filter((n) => n !== "do") as InputName[];
  for (const n of names) ad[n] = Array.from(x[n], (e) => tp.leaf(e));
  const outs = ORACLE_OPS[v](tp, ad, shape, p);
  const dO = x.do;
  tp.backward(tp.sum(outs.o!.map((e: Node, i) => tp.scale(e, dO[i]))));
  const res: RefOutputs = {};
  for (const [k, nodes] of Object.entries(outs)) {
    res[k as keyof RefOutputs] = Float64Array.from(nodes, (e) => e.value);
  }
  for (const n of names) {
    res[`d${n}` as keyof RefOutputs] = Float64Array.from(ad[n]!, (e) => e.grad);
  }
  return res;
}
