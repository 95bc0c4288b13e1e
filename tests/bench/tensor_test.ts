import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  bf16BitsToF32,
  cast,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  tensor,
} from "../../bench/tensor.ts";

describe("bf16", () => {
  it("round-trips representable values and rounds to nearest even", () => {
    for (const x of [0, 1, -2, 0.5, 3.140625, 65280, -1e-3]) {
      const back = bf16BitsToF32(f32ToBf16Bits(x));
      assert.ok(Math.abs(back - x) <= Math.abs(x) * 2 ** -8, `${x} -> ${back}`);
    }
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
    assert.equal(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8)), 1);
    assert.equal(bf16BitsToF32(f32ToBf16Bits(1 + 3 * 2 ** -8)), 1 + 2 ** -6);
    assert.ok(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN))));
    assert.equal(bf16BitsToF32(f32ToBf16Bits(Infinity)), Infinity);
  });
});

describe("f16", () => {
  it("handles normals, subnormals, overflow and ties", () => {
    assert.equal(f16BitsToF32(f32ToF16Bits(1)), 1);
    assert.equal(f32ToF16Bits(65504), 0x7bff);
    assert.equal(f32ToF16Bits(70000), 0x7c00);
    assert.equal(f16BitsToF32(f32ToF16Bits(2 ** -24)), 2 ** -24);
    assert.equal(f16BitsToF32(f32ToF16Bits(2 ** -26)), 0);
    assert.equal(f16BitsToF32(f32ToF16Bits(1 + 2 ** -11)), 1);
    assert.equal(f16BitsToF32(f32ToF16Bits(1 + 3 * 2 ** -11)), 1 + 2 ** -9);
    assert.equal(f16BitsToF32(f32ToF16Bits(-0.333251953125)), -0.333251953125);
    assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))));
  });
});

describe("cast", () => {
  it("converts between storage dtypes and checks sizes", () => {
    const t = tensor("f64", [2, 2], Float64Array.from([1, -0.1, 1e6, 3]));
    const b = cast(cast(t, "bf16"), "f64").data;
    assert.deepEqual(Array.from(b).map((x) => Math.round(x * 1000) / 1000), [1, -0.1, 999424, 3]);
    assert.throws(() => tensor("f32", [3], new Float32Array(2)), /3/);
  });
});
