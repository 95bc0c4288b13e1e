import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { allFinite, compareTensor } from "../../bench/correctness.ts";
import { f32ToBf16Bits, f32ToF16Bits, tensor } from "../../bench/tensor.ts";

describe("correctness gate", () => {
  it("finds non-finite values in every storage dtype", () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      assert.equal(allFinite(tensor("f32", [3], Float32Array.from([1, bad, 2]))), false);
      assert.equal(allFinite(tensor("f64", [2], Float64Array.from([bad, 0]))), false);
      assert.equal(
        allFinite(tensor("bf16", [2], Uint16Array.from([0x3f80, f32ToBf16Bits(bad)]))),
        false,
      );
      assert.equal(allFinite(tensor("f16", [2], Uint16Array.from([f32ToF16Bits(bad), 0]))), false);
    }
    assert.equal(allFinite(tensor("bf16", [2], Uint16Array.from([f32ToBf16Bits(-3e38), 0]))), true);
    assert.equal(allFinite(tensor("f16", [1], Uint16Array.from([f32ToF16Bits(65504)]))), true);
    // The NaN poison the backends write (all bits set) must never pass.
    assert.equal(allFinite(tensor("bf16", [1], Uint16Array.from([0xffff]))), false);
  });

  it("measures relative error and fails NaN", () => {
    const ref = Float64Array.from([3, 4]);
    const e = compareTensor(tensor("f32", [2], Float32Array.from([3, 4.5])), ref);
    assert.ok(Math.abs(e.rel_rms - 0.1) < 1e-12);
    assert.equal(e.max_abs, 0.5);
    assert.equal(compareTensor(tensor("f32", [2], Float32Array.from([NaN, 4])), ref).finite, false);
  });
});
