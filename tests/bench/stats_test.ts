import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  bootstrapMedianCI,
  isSteady,
  median,
  quantile,
  relativeHalfWidth,
  summarize,
} from "../../bench/stats.ts";

describe("stats", () => {
  it("quantiles interpolate between order statistics", () => {
    assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
    assert.equal(quantile([1, 2, 3, 4, 5], 0.2), 1.8);
    assert.equal(median([5, 1, 3]), 3);
  });

  it("summarizes samples with a CI that contains the median", () => {
    const xs = Array.from({ length: 50 }, (_, i) => 10 + Math.sin(i) * 0.1);
    const s = summarize(xs);
    assert.equal(s.n, 50);
    assert.ok(s.ci95_ms[0] <= s.median_ms && s.median_ms <= s.ci95_ms[1]);
    assert.ok(s.p20_ms <= s.median_ms && s.median_ms <= s.p80_ms);
    assert.ok(s.cv > 0 && s.cv < 0.02);
    assert.ok(relativeHalfWidth(s) < 0.01);
  });

  it("is deterministic and widens with noise", () => {
    const tight = [1, 1.001, 0.999, 1, 1.002, 0.998, 1, 1.001];
    const loose = [1, 1.5, 0.6, 1.2, 0.8, 1.4, 0.7, 1.1];
    assert.deepEqual(bootstrapMedianCI(tight), bootstrapMedianCI(tight));
    const w = (c: [number, number]) => c[1] - c[0];
    assert.ok(w(bootstrapMedianCI(loose)) > 10 * w(bootstrapMedianCI(tight)));
  });
});

describe("isSteady", () => {
  it("fails a change of regime, passes slow outliers, is undefined below 4 samples", () => {
    const fast = Array(10).fill(9.8);
    assert.equal(isSteady(fast, 0.02, 5), true);
    assert.equal(isSteady([17.4, 17.4, 15.8, ...fast.slice(3)], 0.02, 5), false);
    // A late faster regime the halves do not see yet.
    assert.equal(isSteady([...Array(8).fill(14.7), 13.6, 5.7], 0.02, 5), false);
    // Slower outliers are noise: they widen the CI, not the steadiness.
    assert.equal(isSteady([...fast.slice(0, 9), 15], 0.02, 5), true);
    assert.equal(isSteady([9.8, 9.8, 9.8], 0.02, 5), undefined);
  });
});
