import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { cellId, type PlannedCell, profileSpec } from "../../bench/matrix.ts";
import { RunTimePredictor } from "../../bench/predict.ts";
import type { Cell } from "../../bench/results.ts";
import { finish, newCell } from "../../bench/runner.ts";

const spec = profileSpec("full", true);
const series = {
  backend: "webgpu",
  variant: "softmax",
  impl: "flash",
  dtype: "bf16",
  mode: "fwd",
} as const;

function planned(T: number, over: Partial<PlannedCell> = {}): PlannedCell {
  const p = { ...series, T, ...over } as Omit<PlannedCell, "id">;
  return { ...p, id: cellId(p, spec) };
}

/** A finished cell of the series at T with the given median (ms). */
function timed(T: number, medianMs: number, status: Cell["status"] = "ok"): Cell {
  const cell = finish(newCell(planned(T), spec).cell, status, "");
  if (status === "ok") cell.stats = { median_ms: medianMs } as Cell["stats"];
  return cell;
}

const flops = (T: number) => newCell(planned(T), spec).cell.work.flops;

describe("RunTimePredictor", () => {
  it("scales the largest smaller T of the same series by declared FLOPs", () => {
    const p = new RunTimePredictor();
    p.record(timed(16384, 10));
    p.record(timed(65536, 160));
    const got = p.predict(planned(262144), flops(262144))!;
    // softmax FLOPs grow as T²: 160 ms × 16.
    assert.ok(Math.abs(got.ms - 2560) < 30, `${got.ms}`);
    assert.match(got.basis, /^T=64K ran in 160 ms × 16\.\d/);
  });

  it("skips only when three predicted runs exceed the cell timeout", () => {
    const p = new RunTimePredictor();
    p.record(timed(262144, 14_000));
    const T = 1048576;
    assert.match(
      p.skipReason(planned(T), flops(T), 300),
      /^predicted 22\d s a run \(T=256K ran in 14\.0 s × 16\.\d \(declared FLOPs\)\); 3 runs exceed --cell-timeout 300 s$/,
    );
    assert.equal(p.skipReason(planned(T), flops(T), 900), "");
  });

  it("predicts nothing from another series, a failed cell, or without a smaller T", () => {
    const p = new RunTimePredictor();
    p.record(timed(65536, 1e6, "oom"));
    p.record(timed(1048576, 1e6));
    assert.equal(p.predict(planned(262144), flops(262144)), undefined);
    assert.equal(p.predict(planned(262144, { dtype: "f32" }), flops(262144)), undefined);
    assert.equal(p.skipReason(planned(262144), flops(262144), 1), "");
  });

  it("never predicts less than linear growth in T", () => {
    const p = new RunTimePredictor();
    p.record(timed(16384, 100));
    // Same FLOPs declared for a longer T (as an impl the declared count undercounts) → T ratio.
    assert.equal(p.predict(planned(65536), flops(16384))!.ms, 400);
  });
});
