import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EtaEstimator, formatDuration } from "../../bench/progress.ts";

const cell = (backend: string, T: number) => ({ backend, T });

describe("EtaEstimator", () => {
  it("knows nothing before the first cell finishes", () => {
    assert.ok(Number.isNaN(new EtaEstimator([cell("cuda", 1024)]).seconds()));
  });

  it("prices each cell by its backend and T, not by the run's mean", () => {
    const eta = new EtaEstimator([
      cell("cuda", 16384),
      cell("cuda", 16384),
      cell("cuda", 16384),
      cell("cuda", 1048576),
      cell("cuda", 1048576),
    ]);
    eta.finished(cell("cuda", 1048576), 60);
    // one 1M cell left at 60 s; the three 16K cells have no tally of their own or of their T
    // yet, so they take the mean of all finished cells (60 s)
    assert.equal(eta.seconds(), 60 + 3 * 60);
    eta.finished(cell("cuda", 16384), 2);
    // now 16K costs 2 s: 2 × 2 + 1 × 60
    assert.equal(eta.seconds(), 2 * 2 + 60);
  });

  it("falls back to the same T on another backend, then divides by the lanes", () => {
    const eta = new EtaEstimator([cell("webgpu", 65536), cell("torch", 65536)], 2);
    eta.finished(cell("webgpu", 65536), 10);
    // torch at 64K borrows webgpu's 64K mean; two lanes share the 10 s left
    assert.equal(eta.seconds(), 10 / 2);
  });

  it("ignores cells finished beyond the plan (a handed-back cell finished elsewhere)", () => {
    const eta = new EtaEstimator([cell("cuda", 1024)]);
    eta.finished(cell("cuda", 1024), 4);
    eta.finished(cell("cuda", 1024), 4);
    assert.equal(eta.seconds(), 0);
  });
});

describe("formatDuration", () => {
  it("writes seconds, minutes and hours, and ? when unknown", () => {
    assert.equal(formatDuration(42.4), "42s");
    assert.equal(formatDuration(125), "2m05s");
    assert.equal(formatDuration(3 * 3600 + 7 * 60), "3h7m");
    assert.equal(formatDuration(NaN), "?");
  });
});
