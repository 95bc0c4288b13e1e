/**
 * Random op inputs shaped like what models feed these ops: normal q, k, v (feature maps and
 * l2 norms are applied inside the ops), GLA gates logsigmoid(x)/16, DeltaNet β = sigmoid(x).
 * Generated straight into the storage dtype so a 1M-token bf16 input never exists in fp64.
 */
import { type InputName, type Inputs, inputShape, type OpRequest, requiredInputs } from "./ops.ts";
import { mulberry32 } from "./stats.ts";
import {
  type Dtype,
  f32ToBf16Bits,
  f32ToF16Bits,
  numel,
  type Tensor,
  tensor,
  type TensorData,
} from "./tensor.ts";

export type Distribution = "normal" | "gate" | "beta";

export function distributionOf(name: InputName): Distribution {
  return name === "g" ? "gate" : name === "beta" ? "beta" : "normal";
}

/** Normal deviates by Box–Muller, two per pair of uniforms. */
function normals(rand: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = 1 - rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

export function randomTensor(
  shape: readonly number[],
  dtype: Dtype,
  dist: Distribution,
  seed: number,
): Tensor {
  const n = numel(shape);
  const t = tensor(dtype, shape);
  const d: TensorData = t.data;
  const next = normals(mulberry32(seed));
  const encode = dtype === "bf16"
    ? f32ToBf16Bits
    : dtype === "f16"
    ? f32ToF16Bits
    : (x: number) => x;
  for (let i = 0; i < n; i++) {
    const x = next();
    const y = dist === "gate"
      ? -Math.log1p(Math.exp(-x)) / 16
      : dist === "beta"
      ? 1 / (1 + Math.exp(-x))
      : x;
    d[i] = encode(y);
  }
  return t;
}

/** The seed of input `name` of a request drawn from `seed`; device and host draws agree on it. */
export function inputSeed(seed: number, name: InputName): number {
  const i = ["q", "k", "v", "g", "beta", "mem", "h0", "z0", "do"].indexOf(name);
  return (seed * 31 + i * 7919) >>> 0;
}

/** Every input the request needs, each from its own seed derived from `seed`. */
export function randomInputs(req: OpRequest, dtype: Dtype, seed: number): Inputs {
  const inputs: Inputs = {};
  for (const name of requiredInputs(req.variant, req.mode)) {
    inputs[name] = randomTensor(
      inputShape(name, req.shape),
      dtype,
      distributionOf(name),
      inputSeed(seed, name),
    );
  }
  return inputs;
}

/** Per-token inputs ([B,T,...]) cut to their first `tokens` positions; the others as they are. */
export function prefixInputs(inputs: Inputs, tokens: number): Inputs {
  const out: Inputs = {};
  for (const [name, t] of Object.entries(inputs) as [InputName, Tensor][]) {
    out[name] = PER_TOKEN.has(name) ? prefix(t, tokens) : t;
  }
  return out;
}

const PER_TOKEN: ReadonlySet<InputName> = new Set(["q", "k", "v", "g", "beta", "do"]);

/** The first `tokens` positions of a [B,T,...] tensor, as a new tensor. */
export function prefix(t: Tensor, tokens: number): Tensor {
  const [B, T, ...rest] = t.shape;
  if (tokens >= T) return t;
  const row = numel(rest);
  const out = tensor(t.dtype, [B, tokens, ...rest]);
  for (let b = 0; b < B; b++) {
    out.data.set(t.data.subarray(b * T * row, (b * T + tokens) * row), b * tokens * row);
  }
  return out;
}
