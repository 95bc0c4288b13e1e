// Loaders of seg_out5.wgsl, chunk_out8.wgsl and seg_state3.wgsl, on raw4_x/cook4_x
// (seg_load.ts) and ld4_ws/st4_ws (kernel.ts vec4Accessors): vec4 column blocks built from whole
// loads, bounds applied as selects on clamped indices, no vector component written at a run-time
// index.

// One vec4 column block of a step's [rows][D4] tile of a [B,T,H,D] tensor: i its first element
// (rows at or past len read row len − 1 instead), n its columns inside the row (1…4), m the
// columns kept (n, or 0 past len).
struct Blk {
  i: u32,
  n: u32,
  m: u32,
}

// Entry e of the tile of tokens t0… (len of them): row e / D4, column block e % D4.
fn blk(bh: u32, t0: u32, len: u32, e: u32, D4: u32, D: u32) -> Blk {
  let s = e / D4;
  let d4 = e % D4;
  let n = min(4u, D - 4u * d4);
  return Blk(row_base(bh, t0 + min(s, len - 1u), D) + 4u * d4, n, select(0u, n, s < len));
}

// x's first m lanes, zero past them.
fn mask4(x: vec4f, m: u32) -> vec4f {
  return select(vec4f(0.0), x, vec4u(0u, 1u, 2u, 3u) < vec4u(m));
}

fn phi4(x: vec4f) -> vec4f {
  return select(exp(x), x + 1.0, x > vec4f(0.0));
}

// φ(q), φ(k), v of one block, zero past its m columns.
fn cook_q(w: Raw4, b: Blk) -> vec4f { return mask4(phi4(cook4_q(w, b.i)), b.m); }
fn cook_k(w: Raw4, b: Blk) -> vec4f { return mask4(phi4(cook4_k(w, b.i)), b.m); }
fn cook_v(w: Raw4, b: Blk) -> vec4f { return mask4(cook4_v(w, b.i), b.m); }

// State row k, columns 4c…4c+3 of the ws slot at base (zero past K, V).
fn ld_srow(base: u32, k: u32, c: u32) -> vec4f {
  if (k >= K) { return vec4f(0.0); }
  return ld4_ws(base + k * V + 4u * c, min(4u, V - 4u * c));
}

// Stores those of state row k, columns 4c…4c+3, inside K, V.
fn st_srow(base: u32, k: u32, c: u32, x: vec4f) {
  if (k < K) { st4_ws(base + k * V + 4u * c, min(4u, V - 4u * c), x); }
}

// Key sum entries 4j…4j+3 of the ws slot at base (4j < K).
fn ld_zblk(base: u32, j: u32) -> vec4f {
  return ld4_ws(base + K * V + 4u * j, min(4u, K - 4u * j));
}
fn st_zblk(base: u32, j: u32, z: vec4f) {
  st4_ws(base + K * V + 4u * j, min(4u, K - 4u * j), z);
}
