import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  bootstrapRatioCI,
  changePoints,
  holm,
  mannWhitney,
  normalSf,
} from "../../reports/stats.ts";
import { noisy } from "./fixtures.ts";

const close = (a: number, b: number, rel: number) =>
  assert.ok(Math.abs(a - b) <= rel * Math.abs(b), `${a} vs ${b}`);

describe("report statistics", () => {
  it("normal tail matches known values, far into the tail", () => {
    close(normalSf(1), 0.15865525393145707, 1e-6);
    close(normalSf(6), 9.865876450376946e-10, 1e-5);
    close(normalSf(-1), 1 - 0.15865525393145707, 1e-6);
  });

  it("Mann–Whitney U matches scipy's asymptotic test with continuity and tie correction", () => {
    // scipy.stats.mannwhitneyu(..., method="asymptotic", use_continuity=True)
    const sep = mannWhitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]);
    assert.equal(sep.u, 0);
    close(sep.p, 0.012185780355344813, 1e-6);
    const ties = mannWhitney([1, 2, 2, 3, 3, 3, 5], [2, 3, 4, 4, 5, 6]);
    assert.equal(ties.u, 10);
    close(ties.p, 0.12500621852933796, 1e-6);
    assert.equal(mannWhitney([2, 2, 2], [2, 2]).p, 1);
  });

  it("Holm adjusts step-down and keeps the input order", () => {
    const adj = holm([0.01, 0.04, 0.03, 0.005]);
    [0.03, 0.06, 0.06, 0.02].forEach((x, i) => close(adj[i], x, 1e-12));
    assert.deepEqual(holm([]), []);
  });

  it("bootstrap CI of the ratio of medians covers the true ratio and is reproducible", () => {
    const base = noisy(1, 40, 10, 0.03);
    const head = noisy(2, 40, 12, 0.03);
    const ci = bootstrapRatioCI(base, head, 0.95, 2000, 42);
    assert.ok(ci[0] < 1.2 && ci[1] > 1.2 && ci[1] - ci[0] < 0.05, String(ci));
    assert.deepEqual(bootstrapRatioCI(base, head, 0.95, 2000, 42), ci);
  });

  it("change points: finds a 20% step in noisy medians, nothing in a flat noisy series", () => {
    const flat = noisy(3, 30, 5, 0.02);
    assert.deepEqual(changePoints(flat), []);
    const step = [...noisy(4, 12, 5, 0.02), ...noisy(5, 10, 6, 0.02)];
    assert.deepEqual(changePoints(step), [12]);
    const two = [...noisy(6, 8, 5, 0.01), ...noisy(7, 8, 4, 0.01), ...noisy(8, 8, 5, 0.01)];
    assert.deepEqual(changePoints(two), [8, 16]);
    assert.deepEqual(changePoints([1, 2, 3]), []);
    // A step below the practical floor is ignored however clean the series is.
    assert.deepEqual(changePoints([1, 1, 1, 1, 1.03, 1.03, 1.03, 1.03]), []);
  });
});
