/**
 * The op contract shared by every backend: variants, parameters, named inputs and outputs,
 * shape rules, and the work each op declares (FLOPs, bytes) so the runner can report rates
 * without knowing which backend it timed. The exact math is in docs/ops.md.
 */
import { type Dtype, shapeString, type Tensor } from "./tensor.ts";

export type Variant = "la" | "gla" | "deltanet" | "rmt" | "softmax";
export const VARIANTS: readonly Variant[] = ["la", "gla", "deltanet", "rmt", "softmax"];

export type Mode = "fwd" | "fwdbwd";
export const MODES: readonly Mode[] = ["fwd", "fwdbwd"];

export interface OpParams {
  /** Multiplies scores or outputs; defaults to 1/sqrt(K). */
  scale: number;
  /** la only: divide by the running key sum (φ(q)ᵀz + 1e-6). */
  normalize: boolean;
  /** deltanet only: l2-normalize q and k inside the op. */
  qk_l2norm: boolean;
  /** rmt only: tokens per segment. */
  segment_len: number;
  /** Tokens per chunk of the chunked kernels. */
  chunk_size: number;
}

export type InputName = "q" | "k" | "v" | "g" | "beta" | "mem" | "h0" | "z0" | "do";
export type OutputName =
  | "o"
  | "final_state"
  | "final_z"
  | "dq"
  | "dk"
  | "dv"
  | "dg"
  | "dbeta"
  | "dmem"
  | "dh0"
  | "dz0";

export type Inputs = Partial<Record<InputName, Tensor>>;
export type Outputs = Partial<Record<OutputName, Tensor>>;

/** Sizes of one op instance. M is the number of rmt memory rows (0 elsewhere). */
export interface Shape {
  B: number;
  T: number;
  H: number;
  K: number;
  V: number;
  M: number;
}

export interface OpRequest {
  variant: Variant;
  mode: Mode;
  params: OpParams;
  shape: Shape;
}

/** A bad request or bad input: the CLI prints the message on one line and exits 1. */
export class InputError extends Error {
  override name = "InputError";
}

export function defaultParams(variant: Variant, K: number): OpParams {
  return {
    scale: 1 / Math.sqrt(K),
    normalize: variant === "la",
    qk_l2norm: variant === "deltanet",
    segment_len: 512,
    chunk_size: 64,
  };
}

/** Which optional inputs a variant accepts, and which it requires beyond q, k, v. */
const REQUIRED: Record<Variant, InputName[]> = {
  la: ["q", "k", "v"],
  gla: ["q", "k", "v", "g"],
  deltanet: ["q", "k", "v", "beta"],
  rmt: ["q", "k", "v", "mem"],
  softmax: ["q", "k", "v"],
};
const OPTIONAL: Record<Variant, InputName[]> = {
  la: ["h0", "z0"],
  gla: ["h0"],
  deltanet: ["h0"],
  rmt: [],
  softmax: [],
};

export function requiredInputs(variant: Variant, mode: Mode): InputName[] {
  return mode === "fwdbwd" ? [...REQUIRED[variant], "do"] : [...REQUIRED[variant]];
}

export function optionalInputs(variant: Variant): InputName[] {
  return OPTIONAL[variant];
}

/** Expected shape of each input for a given op shape. */
export function inputShape(name: InputName, s: Shape): number[] {
  switch (name) {
    case "q":
    case "k":
    case "g":
      return [s.B, s.T, s.H, s.K];
    case "v":
    case "do":
      return [s.B, s.T, s.H, s.V];
    case "beta":
      return [s.B, s.T, s.H];
    case "mem":
      return [s.B, s.M, s.H, s.K];
    case "h0":
      return [s.B, s.H, s.K, s.V];
    case "z0":
      return [s.B, s.H, s.K];
  }
}

/** Shapes of the outputs an op produces for a request. */
export function outputShapes(
  req: OpRequest,
  inputs: Inputs,
): Partial<Record<OutputName, number[]>> {
  const { variant, mode, shape: s, params } = req;
  const out: Partial<Record<OutputName, number[]>> = { o: [s.B, s.T, s.H, s.V] };
  if (variant === "rmt") out.final_state = [s.B, s.M, s.H, s.K];
  else if (variant !== "softmax") out.final_state = [s.B, s.H, s.K, s.V];
  if (variant === "la" && params.normalize) out.final_z = [s.B, s.H, s.K];
  if (mode === "fwdbwd") {
    out.dq = inputShape("q", s);
    out.dk = inputShape("k", s);
    out.dv = inputShape("v", s);
    if (variant === "gla") out.dg = inputShape("g", s);
    if (variant === "deltanet") out.dbeta = inputShape("beta", s);
    if (variant === "rmt") out.dmem = inputShape("mem", s);
    if (inputs.h0) out.dh0 = inputShape("h0", s);
    if (inputs.z0) out.dz0 = inputShape("z0", s);
  }
  return out;
}

/**
 * Derives the op shape from q, v and mem, and checks every other input against it.
 * Throws InputError naming the first problem.
 */
export function inferShape(variant: Variant, mode: Mode, inputs: Inputs): Shape {
  for (const name of requiredInputs(variant, mode)) {
    if (!inputs[name]) {
      throw new InputError(
        `missing input tensor '${name}' (${variant} ${mode} needs ${
          requiredInputs(variant, mode).join(", ")
        })`,
      );
    }
  }
  const allowed = new Set([...requiredInputs(variant, mode), ...optionalInputs(variant)]);
  for (const name of Object.keys(inputs) as InputName[]) {
    if (!allowed.has(name)) {
      throw new InputError(
        `unexpected input tensor '${name}' for ${variant} ${mode} (accepted: ${
          [...allowed].join(", ")
        })`,
      );
    }
  }
  const q = inputs.q!, v = inputs.v!;
  if (q.shape.length !== 4) {
    throw new InputError(`input 'q' must be [B,T,H,K], got ${shapeString(q.shape)}`);
  }
  if (v.shape.length !== 4) {
    throw new InputError(`input 'v' must be [B,T,H,V], got ${shapeString(v.shape)}`);
  }
  const [B, T, H, K] = q.shape;
  const V = v.shape[3];
  const M = variant === "rmt" ? (inputs.mem?.shape[1] ?? 0) : 0;
  const shape: Shape = { B, T, H, K, V, M };
  if (T < 1 || B < 1 || H < 1 || K < 1 || V < 1) {
    throw new InputError(
      `empty dimension in q ${shapeString(q.shape)} or v ${shapeString(v.shape)}`,
    );
  }
  if (variant === "rmt" || variant === "softmax") {
    if (K !== V) throw new InputError(`${variant} needs K == V, got K=${K} V=${V}`);
  }
  for (const [name, t] of Object.entries(inputs) as [InputName, Tensor][]) {
    const want = inputShape(name, shape);
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new InputError(
        `input '${name}' has shape ${shapeString(t.shape)}, expected ${shapeString(want)} ` +
          `from q ${shapeString(q.shape)} and v ${shapeString(v.shape)}`,
      );
    }
  }
  if (variant === "rmt" && M < 1) {
    throw new InputError("rmt needs at least one memory row in 'mem'");
  }
  return shape;
}

export function checkParams(variant: Variant, p: OpParams): void {
  if (!Number.isFinite(p.scale)) {
    throw new InputError(`scale must be a finite number, got ${p.scale}`);
  }
  if (!Number.isInteger(p.chunk_size) || p.chunk_size < 1) {
    throw new InputError(`chunk_size must be a positive integer, got ${p.chunk_size}`);
  }
  if (variant === "rmt" && (!Number.isInteger(p.segment_len) || p.segment_len < 1)) {
    throw new InputError(`segment_len must be a positive integer, got ${p.segment_len}`);
  }
}

/**
 * Work an op must do, for rates and rooflines: FLOPs of the chunked algorithm's matrix
 * products (2 per multiply-add) and the fewest bytes it must move (inputs read once, outputs
 * written once, at the storage dtype). Declared here so every backend is judged alike.
 */
export function opWork(req: OpRequest, dtype: Dtype): { flops: number; bytes: number } {
  const { B, T, H, K, V, M } = req.shape;
  const C = Math.min(req.params.chunk_size, T);
  const e = dtype === "f64" ? 8 : dtype === "f32" ? 4 : 2;
  const BH = B * H;
  let flops: number;
  switch (req.variant) {
    case "la":
    case "gla":
      // per chunk: QKᵀ (C·C·K), ·V (C·C·V), Q·S (C·K·V), Kᵀ·V state update (C·K·V)
      flops = 2 * BH * T * (C * K + C * V + 2 * K * V);
      break;
    case "deltanet":
      // adds KKᵀ, the triangular solve, W·S and the W/U products
      flops = 2 * BH * T * (2 * C * K + C * V + 4 * K * V + C * (K + V));
      break;
    case "rmt": {
      const L = Math.min(req.params.segment_len, T);
      flops = 2 * BH * T * ((M + L / 2) * (K + V)) +
        2 * BH * Math.ceil(T / L) * M * (M + L) * (K + V);
      break;
    }
    case "softmax":
      flops = 2 * BH * T * (T / 2) * (K + V);
      break;
  }
  let bytes = BH * T * (2 * K + 2 * V) * e;
  if (req.variant === "gla") bytes += BH * T * K * e;
  if (req.variant === "deltanet") bytes += BH * T * e;
  if (req.variant === "rmt") bytes += 2 * BH * M * K * e;
  if (req.mode === "fwdbwd") {
    flops *= 3;
    bytes *= 2.5;
  }
  return { flops, bytes };
}
