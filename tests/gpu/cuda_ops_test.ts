/**
 * Every op the cuda backend lists, in every dtype and mode it lists, against the fp64 oracle
 * on shapes that catch tail handling (T not a multiple of the chunk, T under one chunk), both
 * head dims, B·H of 1, 8 and 64, with and without an initial state; the chunk impls of la, gla
 * and deltanet also at chunk_size 16 and 32. Outputs are poisoned before each run and inputs
 * are fresh every run. Runs only with LAB_GPU_TESTS=1.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { openCuda } from "../../bench/backends/cuda.ts";
import type { Backend, ImplInfo } from "../../bench/backends/backend.ts";
import type { Mode, Shape, Variant } from "../../bench/ops.ts";
import { caseName, GPU_TESTS, type OpCase, runCase } from "./harness.ts";

/** GPU_TEST_OPS=la/chunk,gla/chunk narrows the sweep to those ops. */
const only = Deno.env.get("GPU_TEST_OPS")?.split(",").map((x) => x.trim());
const seed0 = Number(Deno.env.get("GPU_TEST_SEED") ?? Math.floor(Math.random() * 1e9));

interface ShapeCase {
  shape: Shape;
  withState: boolean;
  params?: OpCase["params"];
  /** Only these modes (default: every mode the op lists). */
  modes?: Mode[];
}

function shapes(variant: Variant, impl: string): ShapeCase[] {
  const M = variant === "rmt" ? 4 : 0;
  const sh = (B: number, T: number, H: number, D: number): Shape => ({ B, T, H, K: D, V: D, M });
  const state = variant !== "rmt" && variant !== "softmax";
  const list: ShapeCase[] = [
    { shape: sh(1, 37, 1, 64), withState: false },
    { shape: sh(2, 200, 4, 64), withState: state },
    { shape: sh(1, 200, 8, 128), withState: false },
    { shape: sh(4, 70, 16, 64), withState: state },
    { shape: sh(1, 1000, 2, 64), withState: false },
  ];
  if (variant === "la") {
    list.push({ shape: sh(2, 200, 4, 64), withState: true, params: { normalize: false } });
  }
  if (variant === "deltanet") {
    list.push({ shape: sh(2, 130, 4, 64), withState: true, params: { qk_l2norm: false } });
  }
  if (variant === "rmt") {
    for (const l of list) l.params = { segment_len: 64 };
    list.push({ shape: sh(1, 300, 2, 128), withState: false, params: { segment_len: 128 } });
  }
  // chunk_size other than the default 64 (la, gla: one kernel instantiation per size): T under
  // one chunk, T not a multiple of the chunk, both head dims.
  if (impl === "chunk" && (variant === "la" || variant === "gla" || variant === "deltanet")) {
    for (const chunk_size of [16, 32]) {
      list.push(
        { shape: sh(1, 11, 1, 64), withState: false, params: { chunk_size } },
        { shape: sh(2, 200, 4, 64), withState: true, params: { chunk_size } },
        { shape: sh(1, 200, 2, 128), withState: true, params: { chunk_size } },
      );
    }
  }
  // The la and gla forwards walk several chunks per segment only when ⌈T/C⌉·B·H >= 4096: here
  // 69 chunks of 16 × 64 heads, 2 chunks per segment and a last segment of one partial chunk.
  if (impl === "chunk" && (variant === "la" || variant === "gla")) {
    list.push({
      shape: sh(4, 1100, 16, 64),
      withState: true,
      params: { chunk_size: 16 },
      modes: ["fwd"],
    });
  }
  return list;
}

if (GPU_TESTS) {
  let backend: Backend;
  let impls: ImplInfo[] = [];
  before(async () => {
    backend = await openCuda();
    impls = backend.impls();
    console.log(
      `cuda ops: ${impls.map((i) => `${i.variant}/${i.impl}`).join(", ")} (seed ${seed0})`,
    );
  });
  after(() => backend?.close());

  describe(`cuda ops vs the fp64 oracle (seed ${seed0})`, () => {
    it("every listed op, dtype, mode and shape", async () => {
      const failed: string[] = [];
      let n = 0;
      for (const info of impls) {
        if (only && !only.includes(`${info.variant}/${info.impl}`)) continue;
        for (const dtype of info.dtypes) {
          for (const mode of info.modes) {
            // f64 is the recurrent impl's fp64 oracle: forward only (lak.h LAK_DTYPE_F64).
            if (dtype === "f64" && mode !== "fwd") continue;
            for (const { modes, ...s } of shapes(info.variant, info.impl)) {
              if (modes && !modes.includes(mode)) continue;
              const c: OpCase = { variant: info.variant, impl: info.impl, dtype, mode, ...s };
              const name = caseName(c);
              try {
                const r = await runCase(backend, c, seed0 + n++);
                const worst = Object.entries(r.errors).map(([k, e]) =>
                  `${k} ${e!.rel_rms.toExponential(1)}`
                )
                  .join(" ");
                console.log(`${r.failures.length ? "FAIL" : "ok  "} ${name}: ${worst}`);
                if (r.failures.length) failed.push(`${name}: ${r.failures.join("; ")}`);
              } catch (e) {
                console.log(`ERR  ${name}: ${(e as Error).message}`);
                failed.push(`${name}: ${(e as Error).message}`);
              }
            }
          }
        }
      }
      assert.ok(n > 0, "the cuda backend lists no ops");
      assert.deepEqual(failed, [], `${failed.length} of ${n} cases failed:\n${failed.join("\n")}`);
    });
  });
}
