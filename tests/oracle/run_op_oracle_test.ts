/**
 * The done-criterion of the foundation: `run-op --backend cpu --dtype f64` agrees with an
 * independent fp64 implementation (the autodiff oracle, written from the math alone), forward
 * and every gradient, for every variant, end to end through safetensors files.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { defaultParams, inputShape, type Shape, type Variant, VARIANTS } from "../../bench/ops.ts";
import { parseSafetensors, serializeSafetensors } from "../../bench/safetensors.ts";
import { type Tensor, tensor } from "../../bench/tensor.ts";
import { runScript } from "../bench/cli_util.ts";
import { makeInputs, relErr } from "./harness.ts";
import { adOracle } from "./ops.ts";

const SHAPES: Record<Variant, Shape> = {
  la: { B: 2, T: 7, H: 2, K: 3, V: 4, M: 0 },
  gla: { B: 1, T: 9, H: 2, K: 4, V: 3, M: 0 },
  deltanet: { B: 2, T: 6, H: 1, K: 4, V: 3, M: 0 },
  rmt: { B: 1, T: 8, H: 2, K: 3, V: 3, M: 2 },
  softmax: { B: 2, T: 6, H: 2, K: 3, V: 3, M: 0 },
};

let dir = "";
describe("run-op (cpu, f64) vs the autodiff oracle", () => {
  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "oracle-runop-" });
  });
  after(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  VARIANTS.forEach((variant, i) => {
    it(variant, async () => {
      const shape = SHAPES[variant];
      const params = { ...defaultParams(variant, shape.K), segment_len: 3, chunk_size: 4 };
      const withState = variant === "la" || variant === "gla" || variant === "deltanet";
      const x = makeInputs(variant, shape, 1000 + i, { h0: withState, z0: variant === "la" });
      const tensors: Record<string, Tensor> = {};
      for (const [name, d] of Object.entries(x)) {
        tensors[name] = tensor("f64", inputShape(name as never, shape), d!);
      }
      const input = `${dir}/${variant}.safetensors`;
      const output = `${dir}/${variant}-out.safetensors`;
      await Deno.writeFile(
        input,
        serializeSafetensors(tensors, { segment_len: "3", chunk_size: "4" }),
      );
      const r = await runScript("bench/cli/run_op.ts", [
        `--variant=${variant}`,
        "--backend=cpu",
        "--dtype=f64",
        "--mode=fwdbwd",
        `--input=${input}`,
        `--output=${output}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const got = parseSafetensors(await Deno.readFile(output)).tensors;
      const want = adOracle(variant, shape, x as Record<string, Float64Array>, params);
      assert.deepEqual(
        Object.keys(got).sort(),
        Object.keys(want).sort(),
      );
      for (const [name, ref] of Object.entries(want)) {
        const e = relErr(got[name].data as Float64Array, ref!);
        assert.ok(e <= 1e-10, `${name}: relative error ${e}`);
      }
    });
  });
});
