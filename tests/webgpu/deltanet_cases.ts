/**
 * What the deltanet tests share: the case shape, its request and its inputs, and for fwdbwd the
 * check of every output and gradient against the fp64 oracle and against another code path.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import type { Backend } from "../../bench/backends/backend.ts";
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
import { oracle } from "../../kernels/reference/index.ts";
import { relErr, storedF64, withTune } from "./compare.ts";

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

/** The fwdbwd request of a case. */
export function deltaFwdbwdRequest(c: DeltaCase): OpRequest {
  return { ...deltaRequest(c), mode: "fwdbwd" };
}

/** A case's inputs plus the output gradient `do`, uniform in [−1, 1]. */
export function deltaFwdbwdInputs(c: DeltaCase, seed: number): Inputs {
  const x = deltaInputs(c, seed);
  const r = rng(seed + 1);
  const d = new Float32Array(numel(inputShape("do", c.shape)));
  for (let i = 0; i < d.length; i++) d[i] = 2 * r() - 1;
  return { ...x, do: tensor("f32", inputShape("do", c.shape), d) };
}

const TOL = { f32: 2e-4, f16: 2e-2, bf16: 2e-2 } as const;
const GRAD_TOL = 3e-2;

/**
 * `got` (every output and gradient of a fwdbwd run, `label`) is within the op tolerances of the
 * fp64 oracle on the inputs as stored (f32 2e-4; 16-bit 2e-2 outputs, 3e-2 gradients).
 */
export function assertFwdbwdOracle(
  label: string,
  got: Record<string, ArrayLike<number>>,
  req: OpRequest,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
  replay: string,
): void {
  const ref = oracle("deltanet").backward(storedF64(x, dtype), req.shape, req.params);
  for (const [n, out] of Object.entries(got)) {
    const tol = dtype === "f32"
      ? TOL.f32
      : n === "o" || n === "final_state"
      ? TOL[dtype]
      : GRAD_TOL;
    const e = relErr(out, ref[n as keyof typeof ref]!);
    assert.ok(e <= tol, `${label}: ${n} rel err ${e} > ${tol} (${replay})`);
  }
}

/**
 * assertFwdbwdOracle, and `got` within `agree` (relative) of `other`, the same run on the path
 * it is meant to replace.
 */
export function assertFwdbwdMatches(
  label: string,
  got: Record<string, ArrayLike<number>>,
  other: Record<string, ArrayLike<number>>,
  agree: number,
  req: OpRequest,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
  replay: string,
): void {
  assertFwdbwdOracle(label, got, req, x, dtype, replay);
  for (const [n, out] of Object.entries(got)) {
    const d = relErr(out, Float64Array.from(other[n]));
    assert.ok(d <= agree, `${label}: ${n} differs from the other path by ${d} (${replay})`);
  }
}

type Storage16 = "f32" | "f16" | "bf16";

/**
 * Registers, per case and storage dtype, the A/B test of a deltanet version knob under fwdbwd:
 * version 2's outputs and gradients against the fp64 oracle and against version 1
 * (assertFwdbwdMatches); bf16 with an odd V must be refused under version 2 (packed pairs); a
 * dtype the device lacks is skipped with the reason. `run` returns every output of one run
 * under a version, after checking the plan took it.
 */
export function fwdbwdVersionTests<C extends Omit<DeltaCase, "tune">>(
  be: Backend,
  cases: C[],
  opts: {
    /** The knob, e.g. "deltanet.bwd_seg". */
    knob: "deltanet.bwd_seg";
    seed: number;
    agree: Record<Storage16, number>;
    request: (c: C) => OpRequest;
    inputs: (c: C, seed: number) => Inputs;
    /** The case's other overrides, set with the knob. */
    tune?: (c: C) => Record<string, number>;
    run: (c: C, x: Inputs, dtype: Storage16, version: 1 | 2) => Promise<
      Record<string, ArrayLike<number>>
    >;
    /** More assertions on version 2's outputs. */
    check?: (c: C, got: Record<string, ArrayLike<number>>) => void;
  },
): void {
  const offered = be.impls().find((i) => i.variant === "deltanet" && i.impl === "chunk");
  const replay = `WEBGPU_TEST_SEED=${opts.seed}`;
  cases.forEach((c, ci) => {
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      const name = `${c.name}${c.l2norm ? "" : ", no l2 norm"}${c.h0 ? ", h0" : ""} ${dtype}`;
      if (!offered?.dtypes.includes(dtype)) {
        it.skip(`${name} (this device has no ${dtype} storage)`, () => {});
        continue;
      }
      if (dtype === "bf16" && c.shape.V % 2 !== 0) {
        it(`${name} is refused with odd V`, async () => {
          await withTune({ ...opts.tune?.(c), [opts.knob]: 2 }, async () => {
            await assert.rejects(
              be.prepare(opts.request(c), opts.inputs(c, opts.seed), { impl: "chunk", dtype }),
              /even V/,
            );
          });
        });
        continue;
      }
      it(name, async () => {
        const x = opts.inputs(c, opts.seed + 7919 * ci);
        const v2 = await opts.run(c, x, dtype, 2);
        const v1 = await opts.run(c, x, dtype, 1);
        opts.check?.(c, v2);
        const label = `${opts.knob.replace("deltanet.", "")} 2`;
        assertFwdbwdMatches(label, v2, v1, opts.agree[dtype], opts.request(c), x, dtype, replay);
      });
    }
  });
}
