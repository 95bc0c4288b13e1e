/**
 * The statistics behind `compare` and the dashboard's change points. docs/reports.md states
 * each method and its defaults; the tests pin their behaviour on known inputs.
 */
import { median, mulberry32, quantile } from "../bench/stats.ts";

/** Upper tail of the standard normal, P(Z > z), accurate in the far tail where 1 − Φ is not. */
export function normalSf(z: number): number {
  return erfc(z / Math.SQRT2) / 2;
}

/** Complementary error function (Numerical Recipes' erfcc, fractional error below 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(
    -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
                  t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
                                  t * (-0.82215223 + t * 0.17087277)))))))),
  );
  return x >= 0 ? r : 2 - r;
}

export interface RankTest {
  /** U of the first sample: how often one of its values exceeds one of the second's. */
  u: number;
  z: number;
  /** Two-sided. */
  p: number;
}

/**
 * Mann–Whitney U with the normal approximation, tie-corrected variance and a continuity
 * correction. Timings tie often (clock resolution), so the correction matters.
 */
export function mannWhitney(a: readonly number[], b: readonly number[]): RankTest {
  const n1 = a.length, n2 = b.length, n = n1 + n2;
  if (n1 === 0 || n2 === 0) return { u: NaN, z: 0, p: 1 };
  const all = [...a.map((v) => ({ v, first: true })), ...b.map((v) => ({ v, first: false }))]
    .sort((x, y) => x.v - y.v);
  let rankSum = 0, tieTerm = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && all[j + 1].v === all[i].v) j++;
    const rank = (i + j) / 2 + 1;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    for (let k = i; k <= j; k++) if (all[k].first) rankSum += rank;
    i = j + 1;
  }
  const u = rankSum - n1 * (n1 + 1) / 2;
  const mu = n1 * n2 / 2;
  const variance = n1 * n2 / 12 * (n + 1 - tieTerm / (n * (n - 1)));
  if (!(variance > 0)) return { u, z: 0, p: 1 };
  const z = Math.max(0, Math.abs(u - mu) - 0.5) / Math.sqrt(variance);
  return { u, z: Math.sign(u - mu) * z, p: Math.min(1, 2 * normalSf(z)) };
}

/** Holm–Bonferroni step-down adjusted p-values, in the input's order (family-wise error). */
export function holm(ps: readonly number[]): number[] {
  const m = ps.length;
  const order = ps.map((p, i) => ({ p, i })).sort((x, y) => x.p - y.p);
  const adjusted = new Array<number>(m);
  let running = 0;
  order.forEach(({ p, i }, k) => {
    running = Math.max(running, Math.min(1, (m - k) * p));
    adjusted[i] = running;
  });
  return adjusted;
}

/**
 * Median of one bootstrap resample of `sorted`, drawn as counts per index so a resample costs
 * O(n) rather than a sort: compare runs thousands of resamples over hundreds of cells.
 */
function resampledMedian(sorted: Float64Array, counts: Int32Array, rand: () => number): number {
  const n = sorted.length;
  counts.fill(0);
  for (let i = 0; i < n; i++) counts[Math.floor(rand() * n)]++;
  const lo = (n - 1) >> 1, hi = n >> 1;
  let seen = 0, loVal = NaN;
  for (let i = 0; i < n; i++) {
    seen += counts[i];
    if (Number.isNaN(loVal) && seen > lo) loVal = sorted[i];
    if (seen > hi) return (loVal + sorted[i]) / 2;
  }
  return loVal;
}

/** Percentile-bootstrap CI of median(head) / median(base), resampling each side independently. */
export function bootstrapRatioCI(
  base: readonly number[],
  head: readonly number[],
  level: number,
  resamples: number,
  seed: number,
): [number, number] {
  const sb = Float64Array.from(base).sort();
  const sh = Float64Array.from(head).sort();
  const cb = new Int32Array(sb.length), ch = new Int32Array(sh.length);
  const rand = mulberry32(seed);
  const ratios = new Array<number>(resamples);
  for (let r = 0; r < resamples; r++) {
    ratios[r] = resampledMedian(sh, ch, rand) / resampledMedian(sb, cb, rand);
  }
  ratios.sort((x, y) => x - y);
  const tail = (1 - level) / 2;
  return [quantile(ratios, tail), quantile(ratios, 1 - tail)];
}

/** FNV-1a: a per-cell seed from its id, so a cell's CI does not depend on the other cells. */
export function hashSeed(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export interface ChangePointOptions {
  /** Smallest relative step that counts, whatever the noise. */
  minChange: number;
  /** How many standard errors of the difference of segment medians a step must exceed. */
  z: number;
  /** Fewest points on each side of a step. */
  minSegment: number;
}

export const CHANGE_POINT_DEFAULTS: ChangePointOptions = { minChange: 0.05, z: 4, minSegment: 2 };

/**
 * Change points of a series of per-run medians, by binary segmentation of log(value): split
 * where the total absolute deviation from the two sides' medians is least (the L1 cost asv's
 * step detection also uses, which places a step exactly), keep the split if the two medians
 * differ by more than both gates, recurse into each side. Noise is estimated once for the
 * whole series from first differences (1.4826·MAD/√2), which a few steps barely move.
 * Returns the indices where a new level starts, ascending.
 */
export function changePoints(
  values: readonly number[],
  opts: ChangePointOptions = CHANGE_POINT_DEFAULTS,
): number[] {
  const ys = values.map(Math.log);
  if (ys.length < 2 * opts.minSegment || ys.some((y) => !Number.isFinite(y))) return [];
  const diffs = ys.slice(1).map((y, i) => y - ys[i]);
  const mid = median(diffs);
  const sigma = 1.4826 * median(diffs.map((d) => Math.abs(d - mid))) / Math.SQRT2;
  const floor = Math.log1p(opts.minChange);
  const l1 = (xs: number[]) => {
    const m = median(xs);
    return xs.reduce((a, x) => a + Math.abs(x - m), 0);
  };
  const found: number[] = [];
  const split = (lo: number, hi: number) => {
    let best = -1, bestCost = Infinity;
    for (let k = lo + opts.minSegment; k <= hi - opts.minSegment; k++) {
      const cost = l1(ys.slice(lo, k)) + l1(ys.slice(k, hi));
      if (cost < bestCost) [best, bestCost] = [k, cost];
    }
    if (best < 0) return;
    const delta = Math.abs(median(ys.slice(lo, best)) - median(ys.slice(best, hi)));
    // 1.2533 = √(π/2): the standard error of a median over that of a mean, for normal noise.
    const se = 1.2533 * sigma * Math.sqrt(1 / (best - lo) + 1 / (hi - best));
    if (delta < floor || delta <= opts.z * se) return;
    found.push(best);
    split(lo, best);
    split(best, hi);
  };
  split(0, ys.length);
  return found.sort((a, b) => a - b);
}
