/**
 * CPU-runnable checks of the recurrent and quadratic baselines' request handling (no GPU
 * needed): workspace sizes, field validation, the quadratic score-size guard, and the
 * message when cuBLAS cannot be loaded.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LakLibrary, OpParamsBlock } from "../../ffi/library.ts";
import { OutOfMemory, Unsupported } from "../../bench/backends/backend.ts";

const LIB = decodeURIComponent(new URL("../../build/liblak.so", import.meta.url).pathname);
const HAS_LIB = (() => {
  try {
    Deno.statSync(LIB);
    return true;
  } catch {
    return false;
  }
})();
const skip = HAS_LIB ? false : `no ${LIB}`;

function params(
  variant: number,
  impl: number,
  over: Partial<Record<string, number | bigint>> = {},
): OpParamsBlock {
  const p = new OpParamsBlock()
    .set("variant", variant).set("dtype", 1).set("impl", impl)
    .set("B", 1).set("T", 1000).set("H", 8).set("K", 64).set("V", 64).set("M", 0)
    .set("scale", 0.125).set("normalize", variant === 0 ? 1 : 0).set("chunk_size", 64)
    .set("q", 0x1000n).set("k", 0x2000n).set("v", 0x3000n).set("o", 0x4000n);
  if (variant !== 4) p.set("final_state", 0x5000n);
  if (variant === 0) p.set("final_z", 0x6000n);
  if (variant === 1) p.set("g", 0x7000n);
  if (variant === 2) p.set("beta", 0x8000n).set("qk_l2norm", 1);
  for (const [k, v] of Object.entries(over)) p.set(k as never, v!);
  return p;
}

describe("recurrent baseline requests", { skip }, () => {
  it("needs no workspace for a forward and a growing one with do", () => {
    using lib = LakLibrary.open({ path: LIB });
    for (const variant of [0, 1, 2]) {
      assert.equal(lib.opWorkspace(params(variant, 1).bytes), 0);
      const a = lib.opWorkspace(params(variant, 1, { do: 0x9000n }).bytes);
      const b = lib.opWorkspace(params(variant, 1, { do: 0x9000n, T: 4000 }).bytes);
      assert.ok(a > 0 && b > 2 * a, `variant ${variant}: ${a} then ${b}`);
    }
  });

  it("rejects unsupported head dims and stray fields, naming them", () => {
    using lib = LakLibrary.open({ path: LIB });
    assert.throws(() => lib.opWorkspace(params(1, 1, { K: 32 }).bytes), Unsupported);
    assert.throws(() => lib.opWorkspace(params(0, 1, { g: 0x7000n }).bytes), /'g'/);
    assert.throws(() => lib.opWorkspace(params(1, 1, { g: 0 }).bytes), /'g'/);
    assert.throws(() => lib.opWorkspace(params(2, 1, { z0: 0x7000n }).bytes), /'z0'/);
  });
});

describe("quadratic baseline requests", { skip }, () => {
  it("scores whose size overflows 64 bits are OutOfMemory", () => {
    using lib = LakLibrary.open({ path: LIB });
    for (const variant of [0, 4]) {
      assert.throws(
        () => lib.opWorkspace(params(variant, 2, { T: 2 ** 31 - 1, H: 1024 }).bytes),
        OutOfMemory,
      );
    }
  });

  it("sizes the score buffers, or names libcublas.so.13 when cuBLAS is absent", () => {
    using lib = LakLibrary.open({ path: LIB });
    let fwd: number;
    try {
      fwd = lib.opWorkspace(params(4, 2).bytes);
    } catch (e) {
      assert.ok(e instanceof Unsupported, String(e));
      assert.match((e as Error).message, /libcublas\.so\.13/);
      return;
    }
    assert.equal(fwd, 8 * 1000 * 1000 * 2); // B·H·T² bf16 scores
    assert.equal(lib.opWorkspace(params(4, 2, { do: 0x9000n }).bytes), 2 * fwd);
    assert.ok(lib.opWorkspace(params(0, 2).bytes) > fwd);
  });
});
