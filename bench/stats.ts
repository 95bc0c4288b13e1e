/**
 * Summary statistics of timing samples. Quantiles interpolate linearly between order
 * statistics (type 7, as numpy's default); the CI of the median is a percentile bootstrap
 * with a fixed seed so the same samples always give the same interval.
 */

export interface SampleStats {
  median_ms: number;
  p20_ms: number;
  p80_ms: number;
  min_ms: number;
  mean_ms: number;
  /** Coefficient of variation: standard deviation over mean. */
  cv: number;
  /** Bootstrap 95% confidence interval of the median. */
  ci95_ms: [number, number];
  n: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function median(xs: readonly number[]): number {
  return quantile([...xs].sort((a, b) => a - b), 0.5);
}

/** A small, fast, seedable PRNG (mulberry32); reproducible across runs and machines. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function bootstrapMedianCI(
  xs: readonly number[],
  level = 0.95,
  resamples = 2000,
  seed = 0x5eed,
): [number, number] {
  const n = xs.length;
  if (n === 0) return [NaN, NaN];
  if (n === 1) return [xs[0], xs[0]];
  const rand = mulberry32(seed);
  const meds = new Float64Array(resamples);
  const buf = new Float64Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) buf[i] = xs[Math.floor(rand() * n)];
    buf.sort();
    meds[r] = n % 2 ? buf[(n - 1) / 2] : (buf[n / 2 - 1] + buf[n / 2]) / 2;
  }
  meds.sort();
  const alpha = (1 - level) / 2;
  return [quantile(Array.from(meds), alpha), quantile(Array.from(meds), 1 - alpha)];
}

export function summarize(samples: readonly number[]): SampleStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = sorted.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? sorted.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return {
    median_ms: quantile(sorted, 0.5),
    p20_ms: quantile(sorted, 0.2),
    p80_ms: quantile(sorted, 0.8),
    min_ms: sorted[0],
    mean_ms: mean,
    cv: mean > 0 ? Math.sqrt(variance) / mean : NaN,
    ci95_ms: bootstrapMedianCI(sorted),
    n,
  };
}

/** Half-width of the median's CI relative to the median. */
export function relativeHalfWidth(s: SampleStats): number {
  return (s.ci95_ms[1] - s.ci95_ms[0]) / 2 / s.median_ms;
}

/**
 * Whether the samples look like one steady state rather than a change of regime (a GPU still
 * raising its clocks, or throttling): the medians of the first and second halves agree within
 * `tol`, and no sample of the latest `recent` runs is faster than the median by more than
 * `2·tol`. On an H100 through Vulkan, cold WebGPU samples of a 256K op read 17.4, 17.4, 15.8 ms,
 * then 9.8 ms from the fourth on; another cell read 14.7 ms eight times, then 13.6 and 5.7. A
 * CI of the median settles on either regime; this test does not. Slower outliers are ordinary
 * noise (interrupts, contention) and only widen the CI; a faster one means the median is not yet
 * what the hardware does. Undefined below 4 samples (a seconds-long op stopped by the time cap).
 */
export function isSteady(
  samples: readonly number[],
  tol: number,
  recent: number,
): boolean | undefined {
  const n = samples.length;
  if (n < 4) return undefined;
  const half = Math.floor(n / 2);
  const a = median(samples.slice(0, half));
  const b = median(samples.slice(n - half));
  const m = median(samples);
  if (Math.abs(a - b) > tol * Math.min(a, b)) return false;
  return Math.min(...samples.slice(Math.max(0, n - recent))) >= m * (1 - 2 * tol);
}
