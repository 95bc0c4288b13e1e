/**
 * What the deltanet segmented-forward tests share: the case shape, its request and its inputs.
 */
import {
  defaultParams,
  type InputName,
  type Inputs,
  inputShape,
  type OpRequest,
  type Shape,
} from "../../bench/ops.ts";
import { numel, tensor } from "../../bench/tensor.ts";
import { mulberry32 as rng } from "../../bench/stats.ts";

export interface DeltaCase {
  name: string;
  shape: Shape;
  chunk: number;
  /** LAB_WEBGPU_TUNE overrides (deltanet.cps, .prep, .sum, .sum_cols, .out_cols, …). */
  tune: Record<string, number>;
  l2norm: boolean;
  h0: boolean;
}

/** The forward request of a case. */
export function deltaRequest(c: DeltaCase): OpRequest {
  return {
    variant: "deltanet",
    mode: "fwd",
    params: { ...defaultParams("deltanet", c.shape.K), chunk_size: c.chunk, qk_l2norm: c.l2norm },
    shape: c.shape,
  };
}

/**
 * Without the l2 norm, I − β k kᵀ has an eigenvalue 1 − β‖k‖², so q, k are kept short enough
 * (‖k‖² < 1) that the state neither explodes nor oscillates and fp32 stays comparable.
 */
export function deltaInputs(c: DeltaCase, seed: number): Inputs {
  const r = rng(seed);
  const inputs: Inputs = {};
  const names: InputName[] = ["q", "k", "v", "beta", ...(c.h0 ? ["h0" as const] : [])];
  const qk = c.l2norm ? 1 : 1.5 / Math.sqrt(c.shape.K);
  for (const name of names) {
    const shape = inputShape(name, c.shape);
    const [lo, hi] = name === "beta" ? [0, 1] : name === "q" || name === "k" ? [-qk, qk] : [-1, 1];
    const d = new Float32Array(numel(shape));
    for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * r();
    inputs[name] = tensor("f32", shape, d);
  }
  return inputs;
}
