/**
 * What the WebGPU test files share: the relative error they assert on, a scoped
 * LAB_WEBGPU_TUNE override, uniform random inputs, and one forward run checked against the fp64
 * oracle.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import type { Backend } from "../../bench/backends/backend.ts";
import {
  type InputName,
  type Inputs,
  inputShape,
  type OpRequest,
  outputShapes,
  requiredInputs,
  type Variant,
} from "../../bench/ops.ts";
import { mulberry32 } from "../../bench/stats.ts";
import { cast, type Dtype, numel, type Tensor, tensor, toF64 } from "../../bench/tensor.ts";
import { oracle } from "../../kernels/reference/index.ts";
import { scopeTune, tensorStorage } from "../../kernels/webgpu/kernel.ts";

/** ‖out − ref‖ / ‖ref‖; NaN when any output is not finite. */
export function relErr(out: ArrayLike<number>, ref: Float64Array): number {
  assert.equal(out.length, ref.length);
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(out[i])) return NaN;
    num += (out[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

/** Runs fn with `tune` as the tile overrides (LAB_WEBGPU_TUNE), in this test file only. */
export async function withTune<T>(tune: Record<string, number>, fn: () => Promise<T>): Promise<T> {
  const restore = scopeTune(tune);
  try {
    return await fn();
  } finally {
    restore();
  }
}

/**
 * Inputs drawn from `seed` as f32, in order: `names` (default: the request's required inputs),
 * each uniform in its `ranges` entry, else in [-1, 1).
 */
export function uniformInputs(
  req: Pick<OpRequest, "variant" | "mode" | "shape">,
  seed: number,
  opts: { names?: InputName[]; ranges?: Partial<Record<InputName, [number, number]>> } = {},
): Inputs {
  const r = mulberry32(seed);
  const inputs: Inputs = {};
  for (const name of opts.names ?? requiredInputs(req.variant, req.mode)) {
    const shape = inputShape(name, req.shape);
    const [lo, hi] = opts.ranges?.[name] ?? [-1, 1];
    const d = new Float32Array(numel(shape));
    for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * r();
    inputs[name] = tensor("f32", shape, d);
  }
  return inputs;
}

/** The inputs as the device holds them (rounded to `dtype`; h0, z0 kept in f32), in fp64. */
export function storedF64(inputs: Inputs, dtype: Dtype): Record<string, Float64Array> {
  const x: Record<string, Float64Array> = {};
  for (const [n, t] of Object.entries(inputs) as [string, Tensor][]) {
    x[n] = toF64(cast(t, tensorStorage(n, dtype as Exclude<Dtype, "f64">)));
  }
  return x;
}

/**
 * Every output of one run, its outputs poisoned with NaN first; `inspect` sees the prepared op
 * before it runs (e.g. to assert which passes were planned).
 */
export async function runOutputs(
  be: Backend,
  req: OpRequest,
  x: Inputs,
  dtype: "f32" | "f16" | "bf16",
  opts: { impl?: string; inspect?: (op: unknown) => void } = {},
): Promise<Record<string, ArrayLike<number>>> {
  const op = await be.prepare(req, x, { impl: opts.impl ?? "chunk", dtype });
  try {
    opts.inspect?.(op);
    await op.poison();
    await op.run();
    const out = await op.read();
    return Object.fromEntries(
      Object.keys(outputShapes(req, x)).map((n) => {
        const t = out[n as keyof typeof out];
        assert.ok(t, `output ${n} missing`);
        return [n, t.data];
      }),
    );
  } finally {
    op.dispose();
  }
}

/**
 * One forward of the chunk impl with outputs poisoned first; o and final_state must be within
 * `tol` of the fp64 oracle run on the inputs as stored (rounded to `dtype`; h0 stays f32).
 */
export async function forwardMatchesOracle(
  be: Backend,
  req: OpRequest,
  inputs: Inputs,
  dtype: Dtype,
  tol: number,
  replay: string,
): Promise<void> {
  const op = await be.prepare(req, inputs, { impl: "chunk", dtype });
  try {
    await op.poison();
    await op.run();
    const out = await op.read();
    const ref = oracle(req.variant).forward(storedF64(inputs, dtype), req.shape, req.params);
    for (const name of ["o", "final_state"] as const) {
      const e = relErr(out[name]!.data, ref[name]!);
      assert.ok(e <= tol, `${name} rel err ${e} > ${tol} (${replay})`);
    }
  } finally {
    op.dispose();
  }
}

const TOL = { f32: 2e-4, f16: 2e-2, bf16: 2e-2 } as const;

/** A forward case of a tiled path: its name, shape and the tile overrides that select it. */
export interface TunedCase {
  name: string;
  shape: OpRequest["shape"];
  tune: Record<string, number>;
}

/**
 * Registers one test per storage dtype of `variant`'s chunk impl and per case: under the case's
 * tile overrides, `checkPlan` asserts the intended path was planned, then the forward must match
 * the fp64 oracle. bf16 with an odd V must be refused (packed pairs), never silently wrong; a
 * dtype the device lacks is skipped with the reason.
 */
export function tunedForwardTests<C extends TunedCase>(
  be: Backend,
  variant: Variant,
  cases: C[],
  opts: {
    seed: number;
    request: (c: C) => OpRequest;
    inputs: (c: C, seed: number) => Inputs;
    checkPlan: (c: C, req: OpRequest, dtype: "f32" | "f16" | "bf16") => void;
  },
): void {
  const offered = be.impls().find((i) => i.variant === variant && i.impl === "chunk");
  cases.forEach((c, ci) => {
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      if (!offered?.dtypes.includes(dtype)) {
        it.skip(`${c.name} ${dtype} (this device has no ${dtype} storage)`, () => {});
        continue;
      }
      if (dtype === "bf16" && c.shape.V % 2 !== 0) {
        it(`${c.name} bf16 is refused with odd V`, async () => {
          await assert.rejects(
            be.prepare(opts.request(c), opts.inputs(c, opts.seed), { impl: "chunk", dtype }),
            /even V/,
          );
        });
        continue;
      }
      it(`${c.name} ${dtype}`, async () => {
        const req = opts.request(c);
        const inputs = opts.inputs(c, opts.seed + 7919 * ci);
        await withTune(c.tune, async () => {
          opts.checkPlan(c, req, dtype);
          await forwardMatchesOracle(
            be,
            req,
            inputs,
            dtype,
            TOL[dtype],
            `WEBGPU_TEST_SEED=${opts.seed}`,
          );
        });
      });
    }
  });
}
