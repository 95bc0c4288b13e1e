/**
 * Shared by the rmt, softmax and oracle tests: a seeded PRNG (so a failure reproduces from
 * its seed), random inputs per variant, norm-based relative error, and central finite
 * differences of ℓ = Σ(o ⊙ do).
 */
import {
  type InputName,
  inputShape,
  type OpParams,
  type Shape,
  type Variant,
} from "../../bench/ops.ts";
import type { ReferenceImpl, RefInputs } from "../../kernels/reference/types.ts";
import { mulberry32 as rng } from "../../bench/stats.ts";
export { rng };

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

export interface InputOptions {
  h0?: boolean;
  z0?: boolean;
}

/**
 * Inputs in each variant's intended domain: g ≤ 0 (log decays), beta in (0,1), z0 > 0 (a sum
 * of φ values, which keeps la's normalizer away from zero).
 */
export function makeInputs(v: Variant, s: Shape, seed: number, opt: InputOptions = {}): RefInputs {
  const r = rng(seed);
  const names: InputName[] = ["q", "k", "v", "do"];
  if (v === "gla") names.push("g");
  if (v === "deltanet") names.push("beta");
  if (v === "rmt") names.push("mem");
  if (opt.h0) names.push("h0");
  if (opt.z0) names.push("z0");
  const x: RefInputs = {};
  for (const name of names) {
    const n = inputShape(name, s).reduce((a, b) => a * b, 1);
    const draw = name === "g"
      ? () => -(0.05 + 0.5 * r())
      : name === "beta"
      ? () => 0.1 + 0.8 * r()
      : name === "z0"
      ? () => 0.5 + r()
      : () => normal(r);
    x[name] = Float64Array.from({ length: n }, draw);
  }
  return x;
}

function norm(a: Float64Array): number {
  let s = 0;
  for (const x of a) s += x * x;
  return Math.sqrt(s);
}

/** ‖a − b‖ / ‖b‖, or ‖a‖ when b is all zeros. */
export function relErr(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length) return Infinity;
  const diff = a.map((x, i) => x - b[i]);
  const nb = norm(b);
  return nb === 0 ? norm(diff) : norm(diff) / nb;
}

export function loss(o: Float64Array, dO: Float64Array): number {
  let s = 0;
  for (let i = 0; i < o.length; i++) s += o[i] * dO[i];
  return s;
}

/** Central differences of ℓ for every element of input `name`. */
export function finiteDiff(
  impl: ReferenceImpl,
  x: RefInputs,
  s: Shape,
  p: OpParams,
  name: InputName,
  h = 1e-5,
): Float64Array {
  const t = x[name]!;
  const g = new Float64Array(t.length);
  for (let i = 0; i < t.length; i++) {
    const keep = t[i];
    t[i] = keep + h;
    const up = loss(impl.forward(x, s, p).o!, x.do!);
    t[i] = keep - h;
    const down = loss(impl.forward(x, s, p).o!, x.do!);
    t[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}
