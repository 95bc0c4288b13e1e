/**
 * Shared by the GPU tests: run one op on a backend with outputs poisoned first, on fresh
 * random inputs, and measure every output and gradient against the fp64 oracle run on the
 * same (dtype-rounded) inputs.
 */
import type { Backend } from "../../bench/backends/backend.ts";
import { compareTensor, type ErrorMeasure } from "../../bench/correctness.ts";
import { randomTensor } from "../../bench/inputs.ts";
import {
  defaultParams,
  type InputName,
  type Inputs,
  inputShape,
  type Mode,
  type OpParams,
  type OpRequest,
  type OutputName,
  requiredInputs,
  type Shape,
  type Variant,
} from "../../bench/ops.ts";
import { cast, type Dtype, type Tensor, tensor, toF64 } from "../../bench/tensor.ts";
import { oracle } from "../../kernels/reference/index.ts";
import type { RefInputs } from "../../kernels/reference/types.ts";

export const GPU_TESTS = Deno.env.get("LAB_GPU_TESTS") === "1";

export interface OpCase {
  variant: Variant;
  impl: string;
  dtype: Dtype;
  mode: Mode;
  shape: Shape;
  params?: Partial<OpParams>;
  /** Give h0 (and z0 for la) where the variant accepts them. */
  withState?: boolean;
}

export function caseName(c: OpCase): string {
  const s = c.shape;
  const extra = Object.entries(c.params ?? {}).map(([k, v]) => `${k}=${v}`).join(" ");
  return `${c.variant}/${c.impl} ${c.dtype} ${c.mode} B${s.B} T${s.T} H${s.H} K${s.K} V${s.V}` +
    `${s.M ? ` M${s.M}` : ""}${c.withState ? " h0" : ""}${extra ? " " + extra : ""}`;
}

const GRADIENTS = new Set<OutputName>(["dq", "dk", "dv", "dg", "dbeta", "dmem", "dh0", "dz0"]);

/** Draws inputs at the storage dtype (h0, z0 in f32; z0 positive, as a sum of φ values is). */
export function caseInputs(c: OpCase, seed: number): Inputs {
  const req: OpRequest = { variant: c.variant, mode: c.mode, shape: c.shape, params: params(c) };
  const names: InputName[] = [...requiredInputs(c.variant, c.mode)];
  if (c.withState && c.variant !== "rmt" && c.variant !== "softmax") names.push("h0");
  if (c.withState && c.variant === "la") names.push("z0");
  const inputs: Inputs = {};
  names.forEach((name, i) => {
    const dist = name === "g" ? "gate" : name === "beta" ? "beta" : "normal";
    const d: Dtype = name === "h0" || name === "z0" ? "f32" : c.dtype;
    const t = randomTensor(inputShape(name, req.shape), d, dist, (seed + i * 7919) >>> 0);
    if (name === "z0") {
      for (let j = 0; j < t.data.length; j++) t.data[j] = 1 + Math.abs(t.data[j]);
    }
    inputs[name] = t;
  });
  // Without the in-op l2 norm the delta rule is only stable for unit-norm keys (|β k|² ≤ 2),
  // so the caller normalizes them, as models do.
  if (c.variant === "deltanet" && !req.params.qk_l2norm) {
    for (const name of ["q", "k"] as const) inputs[name] = l2Rows(inputs[name]!, c.dtype);
  }
  return inputs;
}

function l2Rows(t: Tensor, dtype: Dtype): Tensor {
  const x = toF64(t).slice();
  const D = t.shape[t.shape.length - 1];
  for (let r = 0; r < x.length; r += D) {
    let ss = 0;
    for (let j = 0; j < D; j++) ss += x[r + j] * x[r + j];
    const inv = 1 / Math.sqrt(ss + 1e-6);
    for (let j = 0; j < D; j++) x[r + j] *= inv;
  }
  return cast(tensor("f64", t.shape, x), dtype);
}

export function params(c: OpCase): OpParams {
  return { ...defaultParams(c.variant, c.shape.K), ...c.params };
}

export interface CaseResult {
  errors: Partial<Record<OutputName, ErrorMeasure>>;
  /** Outputs over their tolerance, as "name: rel_rms" strings. */
  failures: string[];
}

/**
 * Tolerances of issue 3 on ‖out − ref‖/‖ref‖, with bf16 gradients at issue 5's 3e-2: over 200
 * seeds on the H100 (session 7, docs/results/h100-2026-11-26f/dq-sweep.txt) la's bf16 dq read
 * p50 6.9e-3, max 1.7e-2 at T = 37 and max 2.1e-2 at T = 11 (16 of 200 above 1e-2), as torch's
 * own bf16 la does (1.1e-2): few tokens give small normalizer denominators, and dq subtracts two
 * terms of that size. gla and deltanet stay at 1.7e-3 to 2.8e-3.
 */
export function tolerance(dtype: Dtype, output: OutputName): number {
  if (dtype === "f32") return 2e-5;
  if (dtype === "bf16") return GRADIENTS.has(output) ? 3e-2 : 5e-3;
  if (dtype === "f16") return GRADIENTS.has(output) ? 3e-2 : 2e-2;
  return 1e-9;
}

export async function runCase(
  backend: Backend,
  c: OpCase,
  seed: number,
  tol: (dtype: Dtype, output: OutputName) => number = tolerance,
): Promise<CaseResult> {
  const p = params(c);
  const req: OpRequest = { variant: c.variant, mode: c.mode, shape: c.shape, params: p };
  const inputs = caseInputs(c, seed);
  const op = await backend.prepare(req, inputs, { impl: c.impl, dtype: c.dtype });
  let outputs;
  try {
    await op.poison();
    await op.run();
    outputs = await op.read();
  } finally {
    op.dispose();
  }
  const x: RefInputs = {};
  for (const [name, t] of Object.entries(inputs)) x[name as InputName] = toF64(cast(t!, t!.dtype));
  const ref = c.mode === "fwd"
    ? oracle(c.variant).forward(x, c.shape, p)
    : oracle(c.variant).backward(x, c.shape, p);
  const errors: CaseResult["errors"] = {};
  const failures: string[] = [];
  for (const [name, r] of Object.entries(ref) as [OutputName, Float64Array][]) {
    const out = outputs[name];
    if (!out) {
      failures.push(`${name}: missing`);
      continue;
    }
    const e = compareTensor(out, r);
    errors[name] = e;
    if (!(e.rel_rms <= tol(c.dtype, name))) {
      failures.push(`${name}: rel_rms ${e.rel_rms.toExponential(2)} > ${tol(c.dtype, name)}`);
    }
  }
  return { errors, failures };
}
