/**
 * Small dense fp64 helpers for the references: row-major matrices in flat Float64Arrays,
 * strided row copies between an op's [B,T,H,·] layout and contiguous per-chunk blocks.
 */

/**
 * C (m×n) = α·op(A)·op(B) (+ C when `accumulate`). op(A) is m×k: A is stored m×k, or k×m
 * when `ta`; op(B) is k×n: B is stored k×n, or n×k when `tb`.
 */
export function gemm(
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float64Array,
  ta: boolean,
  b: Float64Array,
  tb: boolean,
  c: Float64Array,
  accumulate = false,
): void {
  if (!accumulate) c.fill(0, 0, m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let l = 0; l < k; l++) {
      const av = alpha * (ta ? a[l * m + i] : a[i * k + l]);
      if (av === 0) continue;
      if (tb) {
        for (let j = 0; j < n; j++) c[ci + j] += av * b[j * k + l];
      } else {
        const bl = l * n;
        for (let j = 0; j < n; j++) c[ci + j] += av * b[bl + j];
      }
    }
  }
}

/** Keeps the lower triangle of an n×n matrix (diagonal too unless `strict`), zeroing the rest. */
export function trilInPlace(a: Float64Array, n: number, strict: boolean): void {
  for (let i = 0; i < n; i++) {
    for (let j = strict ? i : i + 1; j < n; j++) a[i * n + j] = 0;
  }
}

/**
 * out = (I + A)⁻¹ for n×n A whose strictly lower triangle is used (the rest is ignored), by
 * forward substitution: unit lower triangular, so no pivoting or division is needed.
 */
export function unitLowerInverse(a: Float64Array, n: number, out: Float64Array): void {
  out.fill(0, 0, n * n);
  for (let i = 0; i < n; i++) {
    out[i * n + i] = 1;
    for (let j = 0; j < i; j++) {
      let acc = 0;
      for (let l = j; l < i; l++) acc += a[i * n + l] * out[l * n + j];
      out[i * n + j] = -acc;
    }
  }
}

/** Copies `rows` rows of `cols` elements, the r-th starting at src[off + r·stride], into dst. */
export function gatherRows(
  src: Float64Array,
  off: number,
  stride: number,
  rows: number,
  cols: number,
  dst: Float64Array,
): void {
  for (let r = 0; r < rows; r++) {
    const s = off + r * stride;
    for (let c = 0; c < cols; c++) dst[r * cols + c] = src[s + c];
  }
}

/** The inverse of gatherRows: writes contiguous rows of src back into a strided layout. */
export function scatterRows(
  src: Float64Array,
  rows: number,
  cols: number,
  dst: Float64Array,
  off: number,
  stride: number,
): void {
  for (let r = 0; r < rows; r++) {
    const d = off + r * stride;
    for (let c = 0; c < cols; c++) dst[d + c] = src[r * cols + c];
  }
}

/**
 * y = x / sqrt(Σx² + 1e-6) for the n elements x[xo…], written to y[yo…]; returns the
 * divisor, which the backward needs.
 */
export function l2normalize(
  x: Float64Array,
  xo: number,
  n: number,
  y: Float64Array,
  yo: number,
): number {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[xo + i] * x[xo + i];
  const norm = Math.sqrt(ss + 1e-6);
  for (let i = 0; i < n; i++) y[yo + i] = x[xo + i] / norm;
  return norm;
}

/**
 * Backward of l2normalize: dx = (dy − y·(y·dy)) / norm, with y the normalized vector;
 * overwrites dy[o…o+n) with dx.
 */
export function l2normalizeBackward(
  y: Float64Array,
  yo: number,
  norm: number,
  n: number,
  dy: Float64Array,
  o: number,
): void {
  let dot = 0;
  for (let i = 0; i < n; i++) dot += y[yo + i] * dy[o + i];
  for (let i = 0; i < n; i++) dy[o + i] = (dy[o + i] - y[yo + i] * dot) / norm;
}
