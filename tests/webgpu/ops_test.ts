/**
 * WebGPU forward kernels of gla, deltanet and rmt (and device-side random inputs) against the
 * fp64 oracles on whatever adapter Deno finds (lavapipe on CPU machines). Same policy as
 * la_test.ts: no adapter → skipped, or failed when CI=true; WEBGPU_TEST_SEED=<n> replays.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Backend, Unsupported } from "../../bench/backends/backend.ts";
import { openWebGpu } from "../../bench/backends/webgpu.ts";
import { relErr } from "./compare.ts";
import { webgpuOrReport } from "./adapter.ts";
import {
  defaultParams,
  type InputName,
  type Inputs,
  inputShape,
  type Mode,
  type OpParams,
  type OpRequest,
  optionalInputs,
  outputShapes,
  requiredInputs,
  type Shape,
  type Variant,
} from "../../bench/ops.ts";
import { cast, type Dtype, numel, type Tensor, tensor, toF64 } from "../../bench/tensor.ts";
import { oracle } from "../../kernels/reference/index.ts";
import { mulberry32 as rng } from "../../bench/stats.ts";

const backend = await webgpuOrReport("webgpu op tests");
const SEED = Number(Deno.env.get("WEBGPU_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));

/** Value ranges by input: gates are log decays (≤ 0), β in (0, 1), key sums z0 ≥ 0. */
const RANGE: Partial<Record<InputName, [number, number]>> = {
  g: [-0.6, 0],
  beta: [0, 1],
  z0: [0, 2],
};

function makeInputs(req: OpRequest, seed: number): Inputs {
  const r = rng(seed);
  const inputs: Inputs = {};
  for (const name of [...requiredInputs(req.variant, req.mode), ...optionalInputs(req.variant)]) {
    const shape = inputShape(name, req.shape);
    const [lo, hi] = RANGE[name] ?? [-1, 1];
    const d = new Float32Array(numel(shape));
    for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * r();
    inputs[name] = tensor("f32", shape, d);
  }
  return inputs;
}

const TOL: Record<Dtype, number> = { f64: 1e-12, f32: 2e-4, f16: 2e-2, bf16: 2e-2 };
const GRAD_TOL = 3e-2;
const F32_STORED = new Set(["h0", "z0"]);

/** Checks every output against the oracle fed exactly what the device holds. */
async function check(
  be: Backend,
  req: OpRequest,
  impl: string,
  dtype: Dtype,
  inputs: Inputs,
  seed: number,
) {
  const grad = req.mode === "fwdbwd";
  const op = await be.prepare(req, inputs, { impl, dtype });
  try {
    await op.poison();
    await op.run();
    const out = await op.read();
    const x: Record<string, Float64Array> = {};
    for (const [name, t] of Object.entries(inputs) as [string, Tensor][]) {
      x[name] = toF64(F32_STORED.has(name) ? t : cast(t, dtype));
    }
    const ref = grad
      ? oracle(req.variant).backward(x, req.shape, req.params)
      : oracle(req.variant).forward(x, req.shape, req.params);
    for (const name of Object.keys(outputShapes(req, inputs)) as (keyof typeof ref)[]) {
      const got = out[name];
      assert.ok(got, `output ${name} missing (seed ${seed})`);
      const e = relErr(got.data, ref[name]!);
      // States and their gradients are f32 whatever the storage; their error comes only
      // from inputs rounded to the storage dtype.
      const tol = dtype === "f32"
        ? TOL.f32
        : name === "o" || name === "final_state" || name === "final_z"
        ? TOL[dtype]
        : GRAD_TOL;
      assert.ok(
        e <= tol,
        `${req.variant} ${dtype}: ${name} rel err ${e} > ${tol} (WEBGPU_TEST_SEED=${seed})`,
      );
    }
  } finally {
    op.dispose();
  }
}

interface Case {
  variant: Variant;
  shape: Shape;
  params: Partial<OpParams>;
  mode?: Mode;
  impl?: string;
}

/** T not a multiple of the chunk, B·H > 1, h0 where the variant takes it. */
const CASES: Case[] = [
  // 19 chunks: la's scan batches 8 chunks at a time, then the remainder.
  { variant: "la", shape: { B: 1, T: 150, H: 2, K: 16, V: 12, M: 0 }, params: { chunk_size: 8 } },
  {
    variant: "deltanet",
    shape: { B: 2, T: 37, H: 2, K: 16, V: 12, M: 0 },
    params: { chunk_size: 16 },
    mode: "fwdbwd",
  },
  // Same C, K, V as above (no new pipelines): no l2 norm, another scale, B·H = 3.
  {
    variant: "deltanet",
    shape: { B: 1, T: 21, H: 3, K: 16, V: 12, M: 0 },
    params: { chunk_size: 16, qk_l2norm: false, scale: 0.5 },
    mode: "fwdbwd",
  },
  ...(["la", "softmax"] as const).map((variant): Case => ({
    variant,
    impl: "quadratic",
    shape: { B: 2, T: 29, H: 2, K: 8, V: 8, M: 0 },
    params: {},
  })),
  ...(["la", "gla", "deltanet"] as const).map((variant): Case => ({
    variant,
    impl: "recurrent",
    shape: { B: 2, T: 23, H: 2, K: 8, V: 6, M: 0 },
    params: {},
  })),
  {
    variant: "softmax",
    impl: "flash",
    shape: { B: 2, T: 75, H: 2, K: 16, V: 16, M: 0 },
    params: {},
  },
  {
    variant: "gla",
    shape: { B: 2, T: 37, H: 2, K: 16, V: 12, M: 0 },
    params: { chunk_size: 16 },
    mode: "fwdbwd",
  },
  {
    variant: "la",
    shape: { B: 2, T: 37, H: 2, K: 16, V: 12, M: 0 },
    params: { chunk_size: 16 },
    mode: "fwdbwd",
  },
  {
    variant: "la",
    shape: { B: 1, T: 21, H: 3, K: 16, V: 12, M: 0 },
    params: { chunk_size: 16, normalize: false, scale: 0.4 },
    mode: "fwdbwd",
  },
  { variant: "gla", shape: { B: 2, T: 37, H: 2, K: 16, V: 12, M: 0 }, params: { chunk_size: 16 } },
  {
    variant: "deltanet",
    shape: { B: 2, T: 37, H: 2, K: 16, V: 12, M: 0 },
    params: { chunk_size: 16 },
  },
  {
    variant: "deltanet",
    shape: { B: 1, T: 21, H: 3, K: 8, V: 8, M: 0 },
    params: { chunk_size: 8, qk_l2norm: false, scale: 0.5 },
  },
  {
    variant: "rmt",
    shape: { B: 2, T: 45, H: 2, K: 16, V: 16, M: 3 },
    params: { segment_len: 20, chunk_size: 8 },
  },
];

function request(c: Case): OpRequest {
  return {
    variant: c.variant,
    mode: c.mode ?? "fwd",
    params: { ...defaultParams(c.variant, c.shape.K), ...c.params },
    shape: c.shape,
  };
}

if (backend) {
  const be = backend;
  after(() => be.close());

  describe("webgpu forward kernels vs fp64 oracle", () => {
    CASES.forEach((c, ci) => {
      const info = be.impls().find((i) =>
        i.variant === c.variant && i.impl === (c.impl ?? "chunk")
      );
      for (const dtype of ["f32", "f16", "bf16"] as const) {
        const name = `${c.variant}/${c.impl ?? "chunk"} ${c.mode ?? "fwd"} ${dtype}: ${
          JSON.stringify(c.shape)
        } ${JSON.stringify(c.params)}`;
        if (!info?.dtypes.includes(dtype)) {
          it.skip(`${name} (not offered here)`, () => {});
          continue;
        }
        it(name, async () => {
          const req = request(c);
          const seed = SEED + 7919 * ci;
          await check(be, req, c.impl ?? "chunk", dtype, makeInputs(req, seed), seed);
        });
      }
    });
  });

  describe("webgpu bf16 outputs of odd row length", () => {
    // Stored two elements a word, rows of odd length would share words across invocations.
    for (const variant of ["la", "gla", "deltanet"] as const) {
      it(`${variant} fwdbwd bf16 with odd K is refused (dq), f16 is not`, async () => {
        const shape: Shape = { B: 1, T: 40, H: 2, K: 15, V: 16, M: 0 };
        const req: OpRequest = {
          variant,
          mode: "fwdbwd",
          params: { ...defaultParams(variant, 15), chunk_size: 16 },
          shape,
        };
        await assert.rejects(
          be.prepare(req, { random: { seed: SEED } }, { impl: "chunk", dtype: "bf16" }),
          (e: Error) =>
            e instanceof Unsupported && /output dq has rows of 15 elements/.test(e.message),
        );
        if (!be.impls().find((i) => i.variant === variant)?.dtypes.includes("f16")) return;
        const op = await be.prepare(req, { random: { seed: SEED } }, {
          impl: "chunk",
          dtype: "f16",
        });
        op.dispose();
      });
    }
  });

  describe("webgpu backward timing", () => {
    it("times the backward passes alone for fwdbwd, and refuses it for fwd", async () => {
      const shape: Shape = { B: 1, T: 40, H: 2, K: 16, V: 12, M: 0 };
      const params = { ...defaultParams("la", 16), chunk_size: 16 };
      const bwd = await be.prepare({ variant: "la", mode: "fwdbwd", params, shape }, {
        random: { seed: SEED },
      }, { impl: "chunk", dtype: "f32" });
      const fwd = await be.prepare({ variant: "la", mode: "fwd", params, shape }, {
        random: { seed: SEED },
      }, { impl: "chunk", dtype: "f32" });
      try {
        if (be.info().timer === "timestamp-query") {
          const ms = await bwd.time({ cold: false, samples: 2, part: "bwd" });
          assert.equal(ms.length, 2);
          assert.ok(ms.every((x) => Number.isFinite(x) && x > 0), `bad samples ${ms}`);
        }
        await assert.rejects(
          () => fwd.time({ cold: false, samples: 1, part: "bwd" }),
          (e: Error) => e instanceof Unsupported,
        );
      } finally {
        bwd.dispose();
        fwd.dispose();
      }
    });
  });

  describe("webgpu device-side random inputs", () => {
    it("draws on the device, reads the prefix back, and the op agrees with the oracle", async () => {
      const shape: Shape = { B: 2, T: 40, H: 4, K: 16, V: 16, M: 0 };
      const req: OpRequest = {
        variant: "gla",
        mode: "fwd",
        params: { ...defaultParams("gla", 16), chunk_size: 16 },
        shape,
      };
      // A 9000-byte binding forces head groups of 1 (q is 2·40·4·16·4 = 20480 bytes).
      const split = await openWebGpu({ bindingLimit: 9000 });
      try {
        for (const dtype of ["f32", "bf16"] as const) {
          const op = await split.prepare(req, { random: { seed: SEED } }, { impl: "chunk", dtype });
          try {
            const all = await op.inputs(shape.T);
            const pre = await op.inputs(7);
            assert.deepEqual(pre.q!.shape, [2, 7, 4, 16]);
            const q = all.q!, g = all.g!;
            assert.equal(q.dtype, dtype);
            const qf = toF64(q), gf = toF64(g);
            const mean = qf.reduce((a, b) => a + b, 0) / qf.length;
            const sd = Math.sqrt(qf.reduce((a, b) => a + b * b, 0) / qf.length);
            assert.ok(Math.abs(mean) < 0.15 && Math.abs(sd - 1) < 0.15, `q mean ${mean} sd ${sd}`);
            assert.ok(gf.every((x) => x <= 0 && x > -1), "gates logsigmoid(x)/16");
            // The prefix is the first 7 positions of each batch row of the whole tensor.
            const row = 4 * 16;
            for (let b = 0; b < 2; b++) {
              assert.deepEqual(
                [...pre.q!.data.subarray(b * 7 * row, (b + 1) * 7 * row)],
                [...q.data.subarray(b * 40 * row, (b * 40 + 7) * row)],
              );
            }
            await op.run();
            const out = await op.read();
            const x: Record<string, Float64Array> = {};
            for (const [n, t] of Object.entries(all) as [string, Tensor][]) x[n] = toF64(t);
            const ref = oracle("gla").forward(x, shape, req.params);
            const e = relErr(out.o!.data, ref.o!);
            assert.ok(e <= TOL[dtype], `o rel err ${e} (seed ${SEED})`);
          } finally {
            op.dispose();
          }
        }
      } finally {
        split.close();
      }
    });
  });
}
