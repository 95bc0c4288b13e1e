/**
 * planVersion (kernels/webgpu/kernel.ts), the rule behind every version knob: set, the asked
 * version or its Unsupported; unset, the preferred version or the next older one that tiles.
 * Pure planning: no adapter needed.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Unsupported } from "../../bench/backends/backend.ts";
import { planVersion, scopeTune } from "../../kernels/webgpu/kernel.ts";

/** A planner whose versions in `refuse` cannot tile the request. */
const planner = (refuse: number[]) => (v: number) => {
  if (refuse.includes(v)) throw new Unsupported(`version ${v} cannot tile it`);
  return v;
};

function withKnob<T>(tune: Record<string, number>, f: () => T): T {
  const restore = scopeTune(tune);
  try {
    return f();
  } finally {
    restore();
  }
}

describe("planVersion", () => {
  it("unset: the preferred version, else the next older one that tiles", () => {
    assert.equal(planVersion("x.v", 4, planner([])), 4);
    assert.equal(planVersion("x.v", 4, planner([4, 3])), 2);
    // An untimed candidate above the preferred version never runs unless asked for.
    assert.equal(planVersion("x.v", 6, planner([]), 5), 5);
    assert.throws(() => planVersion("x.v", 2, planner([2, 1])), /version 1 cannot tile/);
    // Deleted versions are skipped: 1, 5, 6 with 6 untimed.
    assert.equal(planVersion("x.v", [1, 5, 6], planner([]), 5), 5);
    assert.equal(planVersion("x.v", [1, 5, 6], planner([5])), 6);
    assert.equal(planVersion("x.v", [1, 5, 6], planner([5]), 5), 1);
  });

  it("set: the asked version, its Unsupported, or a one-line error naming the range", () => {
    withKnob({ "x.v": 6 }, () => assert.equal(planVersion("x.v", 6, planner([]), 5), 6));
    withKnob({ "x.v": 3 }, () => {
      assert.throws(
        () => planVersion("x.v", 4, planner([3])),
        (e) => e instanceof Unsupported && /version 3/.test(e.message),
      );
    });
    withKnob({ "x.v": 5 }, () => {
      assert.throws(() => planVersion("x.v", 4, planner([])), /x\.v must be 1, 2, 3 or 4, got 5/);
    });
    withKnob({ "x.v": 3 }, () => {
      assert.throws(() => planVersion("x.v", [1, 5, 6], planner([])), /must be 1, 5 or 6, got 3/);
    });
    withKnob({ "y.v": 1 }, () => assert.equal(planVersion("x.v", 2, planner([])), 2));
  });
});
