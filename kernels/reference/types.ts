/**
 * The fp64 references' calling convention. Every array is row-major in the layout of
 * bench/ops.ts (`inputShape`, `outputShapes`); nothing here rounds to a narrower dtype.
 */
import type { InputName, OpParams, OutputName, Shape } from "../../bench/ops.ts";

export type RefInputs = Partial<Record<InputName, Float64Array>>;
export type RefOutputs = Partial<Record<OutputName, Float64Array>>;

export interface ReferenceImpl {
  /** o, final_state, and final_z for normalized la. */
  forward(x: RefInputs, s: Shape, p: OpParams): RefOutputs;
  /**
   * Forward outputs plus the gradients of Σ(o ⊙ do) with respect to every input given
   * (dq, dk, dv, and dg, dbeta, dmem, dh0, dz0 where the input exists).
   */
  backward(x: RefInputs, s: Shape, p: OpParams): RefOutputs;
}
