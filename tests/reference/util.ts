/**
 * Shared pieces of the reference tests: a seeded PRNG (so a failure can be replayed with
 * REF_TEST_SEED), model-like random inputs, norm-based relative errors, and a central
 * finite-difference check of every input element against an impl's backward.
 */
import assert from "node:assert/strict";
import { inputShape, type OpParams, type Shape, type Variant } from "../../bench/ops.ts";
import { numel } from "../../bench/tensor.ts";
import type { ReferenceImpl, RefInputs, RefOutputs } from "../../kernels/reference/types.ts";
import { mulberry32 } from "../../bench/stats.ts";
export { mulberry32 };

/** Base seed of this run: REF_TEST_SEED if set, otherwise fresh, and printed on any failure. */
export const BASE_SEED = Deno.env.get("REF_TEST_SEED") !== undefined
  ? Number(Deno.env.get("REF_TEST_SEED"))
  : Math.floor(Math.random() * 2 ** 31);

/** Standard normal samples by Box–Muller. */
export function normals(rng: () => number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rng(), w = rng();
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w);
  }
  return out;
}

export type GateKind = "logsigmoid" | "strong" | "zero";

export interface CaseOptions {
  h0?: boolean;
  z0?: boolean;
  /** gla: logsigmoid(randn)/16 (default), a constant −5, or 0. */
  gate?: GateKind;
  /** Multiplies q and k (keeps deltanet without l2 normalization contractive). */
  qkScale?: number;
}

const logsigmoid = (x: number) => (x < 0 ? x - Math.log1p(Math.exp(x)) : -Math.log1p(Math.exp(-x)));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Random inputs (and `do`) for a variant, shaped as bench/ops.ts says. */
export function makeInputs(
  variant: Variant,
  s: Shape,
  seed: number,
  opt: CaseOptions = {},
): RefInputs {
  const rng = mulberry32(seed);
  const rand = (name: "q" | "k" | "v" | "g" | "beta" | "h0" | "z0" | "do") =>
    normals(rng, numel(inputShape(name, s)));
  const x: RefInputs = { q: rand("q"), k: rand("k"), v: rand("v"), do: rand("do") };
  const c = opt.qkScale ?? 1;
  if (c !== 1) {
    for (let i = 0; i < x.q!.length; i++) {
      x.q![i] *= c;
      x.k![i] *= c;
    }
  }
  if (variant === "gla") {
    const g = rand("g");
    const kind = opt.gate ?? "logsigmoid";
    for (let i = 0; i < g.length; i++) {
      g[i] = kind === "strong" ? -5 : kind === "zero" ? 0 : logsigmoid(g[i]) / 16;
    }
    x.g = g;
  }
  if (variant === "deltanet") x.beta = rand("beta").map(sigmoid);
  if (opt.h0) x.h0 = rand("h0");
  // z is a running sum of φ(k) > 0, so a model's z0 is positive too.
  if (opt.z0) x.z0 = rand("z0").map((z) => Math.abs(z) + 0.5);
  return x;
}

/** ‖a − b‖ / ‖b‖ (or ‖a‖ when b is zero). */
export function relErr(a: Float64Array, b: Float64Array): number {
  assert.equal(a.length, b.length);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Asserts that `got` has exactly the tensors of `want`, each within `tol` relative error. */
export function assertAllClose(
  got: RefOutputs,
  want: RefOutputs,
  tol: number,
  what: string,
  seed: number,
): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: output names`);
  for (const [name, w] of Object.entries(want) as [string, Float64Array][]) {
    const g = got[name as keyof RefOutputs]!;
    const e = relErr(g, w);
    assert.ok(
      e <= tol,
      `${what}: ${name} rel err ${e.toExponential(2)} > ${tol} (seed ${seed}, rerun with ` +
        `REF_TEST_SEED=${BASE_SEED})`,
    );
  }
}

function loss(impl: ReferenceImpl, x: RefInputs, s: Shape, p: OpParams): number {
  const o = impl.forward(x, s, p).o!;
  let l = 0;
  for (let i = 0; i < o.length; i++) l += o[i] * x.do![i];
  return l;
}

/**
 * Central differences of ℓ = Σ(o ⊙ do) for every element of every input, against the
 * gradients of `impl.backward`; also checks that backward's forward outputs match forward.
 */
export function checkGradients(
  impl: ReferenceImpl,
  x: RefInputs,
  s: Shape,
  p: OpParams,
  tol: number,
  what: string,
  seed: number,
): void {
  const h = 1e-6;
  const got = impl.backward(x, s, p);
  const fwd = impl.forward(x, s, p);
  const want: RefOutputs = { ...fwd };
  for (const [name, arr] of Object.entries(x) as [string, Float64Array][]) {
    if (name === "do") continue;
    const d = new Float64Array(arr.length);
    for (let i = 0; i < arr.length; i++) {
      const orig = arr[i];
      arr[i] = orig + h;
      const lp = loss(impl, x, s, p);
      arr[i] = orig - h;
      const lm = loss(impl, x, s, p);
      arr[i] = orig;
      d[i] = (lp - lm) / (2 * h);
    }
    want[`d${name}` as keyof RefOutputs] = d;
  }
  assertAllClose(got, want, tol, what, seed);
}

let caseCounter = 0;

/** A distinct, reproducible seed for each case of this run. */
export function nextSeed(): number {
  return (BASE_SEED + 0x9e3779b9 * ++caseCounter) >>> 0;
}
