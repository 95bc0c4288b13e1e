/**
 * Correctness gates: every timed cell first proves its outputs against the fp64 oracle.
 * Error is ‖out − ref‖ / ‖ref‖ over a whole tensor (rel_rms); any NaN or infinity fails.
 */
import type { PreparedOp } from "./backends/backend.ts";
import type { Inputs, OpRequest, OutputName, Outputs } from "./ops.ts";
import { oracle } from "../kernels/reference/index.ts";
import type { RefInputs } from "../kernels/reference/types.ts";
import { cast, type Dtype, elementAt, type Tensor, toF64 } from "./tensor.ts";
import { prefix } from "./inputs.ts";

/** Gate thresholds on rel_rms, by storage dtype: loose enough for honest rounding, tight
 * enough that a wrong index or a missing term (errors of order 1) cannot pass. */
export const TOLERANCE: Record<Dtype, { outputs: number; gradients: number }> = {
  f64: { outputs: 1e-9, gradients: 1e-9 },
  f32: { outputs: 2e-4, gradients: 5e-4 },
  bf16: { outputs: 1e-2, gradients: 2e-2 },
  f16: { outputs: 2e-2, gradients: 3e-2 },
};

export interface ErrorMeasure {
  rel_rms: number;
  max_abs: number;
  finite: boolean;
}

export function compareTensor(out: Tensor, ref: Float64Array): ErrorMeasure {
  if (out.data.length !== ref.length) {
    return { rel_rms: Infinity, max_abs: Infinity, finite: false };
  }
  let num = 0, den = 0, maxAbs = 0, finite = true;
  for (let i = 0; i < ref.length; i++) {
    const x = elementAt(out, i);
    if (!Number.isFinite(x)) finite = false;
    const d = x - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    if (Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
  }
  const rel = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
  return { rel_rms: finite ? rel : Infinity, max_abs: finite ? maxAbs : Infinity, finite };
}

export interface Correctness {
  /** What the outputs were compared against, in words. */
  reference: string;
  rel_rms: number;
  max_abs: number;
  /** The output or gradient with the largest error. */
  worst: string;
  threshold: number;
  pass: boolean;
  per_output: Record<string, ErrorMeasure>;
}

const GRADIENTS: ReadonlySet<OutputName> = new Set([
  "dq",
  "dk",
  "dv",
  "dg",
  "dbeta",
  "dmem",
  "dh0",
  "dz0",
]);

/**
 * Compares every output with the oracle run on the same inputs, rounded to the storage dtype
 * first so that the error measured is the kernel's, not the inputs'.
 */
export function checkOutputs(
  req: OpRequest,
  inputs: Inputs,
  dtype: Dtype,
  outputs: Outputs,
  only?: ReadonlySet<OutputName>,
): Correctness {
  const x: RefInputs = {};
  for (const [name, t] of Object.entries(inputs)) {
    const stored = name === "h0" || name === "z0" || dtype === "f64" ? t! : cast(t!, dtype);
    x[name as keyof RefInputs] = toF64(stored);
  }
  const ref = req.mode === "fwd"
    ? oracle(req.variant).forward(x, req.shape, req.params)
    : oracle(req.variant).backward(x, req.shape, req.params);
  const per: Record<string, ErrorMeasure> = {};
  let worst = "", worstRatio = -1, pass = true, relMax = 0, absMax = 0, thrWorst = 0;
  for (const [name, r] of Object.entries(ref) as [OutputName, Float64Array][]) {
    if (only && !only.has(name)) continue;
    const out = outputs[name];
    const m = out ? compareTensor(out, r) : { rel_rms: Infinity, max_abs: Infinity, finite: false };
    per[name] = m;
    const thr = GRADIENTS.has(name) ? TOLERANCE[dtype].gradients : TOLERANCE[dtype].outputs;
    const ratio = m.rel_rms / thr;
    if (!(m.rel_rms <= thr)) pass = false;
    if (ratio > worstRatio || Number.isNaN(ratio)) {
      worstRatio = ratio;
      worst = name;
      thrWorst = thr;
    }
    relMax = Math.max(relMax, m.rel_rms);
    absMax = Math.max(absMax, m.max_abs);
  }
  return {
    reference: `fp64 ${req.variant} oracle on ${dtype}-rounded inputs, T=${req.shape.T}`,
    rel_rms: relMax,
    max_abs: absMax,
    worst,
    threshold: thrWorst,
    pass,
    per_output: per,
  };
}

/**
 * At long T the oracle on the whole sequence costs too much, but o is causal: its first
 * `tokens` positions depend only on the first `tokens` inputs. So the timed run's own output
 * is checked on that prefix (against the inputs read back from the device), and every other
 * output is checked for finiteness.
 */
export async function checkPrefix(
  op: PreparedOp,
  req: OpRequest,
  dtype: Dtype,
  tokens: number,
): Promise<Correctness> {
  await op.poison();
  await op.run();
  const outputs = await op.read();
  const T = Math.min(tokens, req.shape.T);
  const pInputs = await op.inputs(T);
  const pReq: OpRequest = { ...req, mode: "fwd", shape: { ...req.shape, T } };
  const c = checkOutputs(pReq, pInputs, dtype, { o: prefix(outputs.o!, T) }, new Set(["o"]));
  const nonFinite = Object.entries(outputs).filter(([, t]) => t && !allFinite(t)).map(([n]) => n);
  if (nonFinite.length) {
    c.pass = false;
    c.worst = `${nonFinite.join(", ")} not finite`;
  }
  c.reference = T === req.shape.T
    ? `fp64 ${req.variant} oracle on ${dtype}-rounded inputs (o${
      req.mode === "fwdbwd" ? " only; gradients finite" : ""
    })`
    : `fp64 ${req.variant} oracle on the first ${T} of ${req.shape.T} tokens (o); all outputs finite`;
  return c;
}

/** Tests the exponent bits of 16-bit storage directly: a 1M-token output is 512M elements. */
export function allFinite(t: Tensor): boolean {
  const d = t.data;
  if (d instanceof Uint16Array) {
    const exp = t.dtype === "bf16" ? 0x7f80 : 0x7c00;
    for (let i = 0; i < d.length; i++) if ((d[i] & exp) === exp) return false;
    return true;
  }
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return false;
  return true;
}
