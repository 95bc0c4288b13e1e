import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseSafetensors, serializeSafetensors } from "../../bench/safetensors.ts";
import { tensor } from "../../bench/tensor.ts";
import { InputError } from "../../bench/ops.ts";

describe("safetensors", () => {
  it("round-trips every dtype and the metadata", () => {
    const tensors = {
      a: tensor("f64", [2, 3], Float64Array.from([1, 2, 3, 4, 5, 6])),
      b: tensor("f32", [1], Float32Array.from([0.5])),
      c: tensor("bf16", [2], Uint16Array.from([0x3f80, 0xbf80])),
      d: tensor("f16", [3], Uint16Array.from([0x3c00, 0, 0x7bff])),
    };
    const bytes = serializeSafetensors(tensors, { scale: "0.5" });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + headerLen) % 8, 0, "data starts 8-byte aligned");
    const back = parseSafetensors(bytes);
    assert.deepEqual(back.metadata, { scale: "0.5" });
    for (const [name, t] of Object.entries(tensors)) {
      assert.equal(back.tensors[name].dtype, t.dtype);
      assert.deepEqual(back.tensors[name].shape, t.shape);
      assert.deepEqual(Array.from(back.tensors[name].data), Array.from(t.data));
    }
  });

  it("rejects damaged files with InputError", () => {
    assert.throws(() => parseSafetensors(new Uint8Array(3)), InputError);
    const good = serializeSafetensors({ a: tensor("f32", [4]) });
    assert.throws(() => parseSafetensors(good.subarray(0, good.length - 4)), /bytes for shape/);
    const header = new TextEncoder().encode(
      JSON.stringify({ a: { dtype: "I8", shape: [1], data_offsets: [0, 1] } }),
    );
    const bad = new Uint8Array(8 + header.length + 1);
    new DataView(bad.buffer).setBigUint64(0, BigInt(header.length), true);
    bad.set(header, 8);
    assert.throws(() => parseSafetensors(bad), /dtype I8/);
  });
});
