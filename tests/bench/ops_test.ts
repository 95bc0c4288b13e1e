import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { defaultParams, inferShape, InputError, opWork, outputShapes } from "../../bench/ops.ts";
import { tensor } from "../../bench/tensor.ts";

const t = (shape: number[]) => tensor("f32", shape);

describe("op contract", () => {
  it("infers the shape and lists outputs", () => {
    const inputs = {
      q: t([1, 5, 2, 4]),
      k: t([1, 5, 2, 4]),
      v: t([1, 5, 2, 3]),
      h0: t([1, 2, 4, 3]),
    };
    const s = inferShape("la", "fwd", inputs);
    assert.deepEqual(s, { B: 1, T: 5, H: 2, K: 4, V: 3, M: 0 });
    const outs = outputShapes({
      variant: "la",
      mode: "fwdbwd",
      shape: s,
      params: defaultParams("la", 4),
    }, inputs);
    assert.deepEqual(Object.keys(outs).sort(), [
      "dh0",
      "dk",
      "dq",
      "dv",
      "final_state",
      "final_z",
      "o",
    ]);
  });

  it("names the missing, unexpected or misshapen tensor", () => {
    const q = t([1, 5, 2, 4]);
    assert.throws(() => inferShape("la", "fwd", { q, k: q }), /missing input tensor 'v'/);
    assert.throws(() => inferShape("gla", "fwd", { q, k: q, v: q }), /missing input tensor 'g'/);
    assert.throws(
      () => inferShape("la", "fwd", { q, k: q, v: q, beta: t([1, 5, 2]) }),
      /unexpected input tensor 'beta'/,
    );
    assert.throws(
      () => inferShape("la", "fwd", { q, k: t([1, 6, 2, 4]), v: q }),
      /input 'k' has shape \[1,6,2,4\]/,
    );
    assert.throws(() => inferShape("la", "fwdbwd", { q, k: q, v: q }), /missing input tensor 'do'/);
    assert.throws(() => inferShape("softmax", "fwd", { q, k: q, v: t([1, 5, 2, 3]) }), /K == V/);
    assert.throws(() => inferShape("la", "fwd", { q: t([5, 2, 4]), k: q, v: q }), InputError);
  });

  it("declares more work for backward and for longer sequences", () => {
    const req = (T: number, mode: "fwd" | "fwdbwd") => ({
      variant: "la" as const,
      mode,
      shape: { B: 1, T, H: 8, K: 64, V: 64, M: 0 },
      params: defaultParams("la", 64),
    });
    const a = opWork(req(1024, "fwd"), "bf16");
    assert.equal(a.bytes, 8 * 1024 * 256 * 2);
    assert.ok(opWork(req(2048, "fwd"), "bf16").flops === 2 * a.flops);
    assert.ok(opWork(req(1024, "fwdbwd"), "bf16").flops > a.flops);
  });
});
