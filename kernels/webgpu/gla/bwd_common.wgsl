// Shared by gla's per-chunk backward passes, in the style of la's (la/bwd_common.wgsl): vec4
// rows in workgroup memory, 4×4 register tiles, products streamed over slabs of depth D. The
// host sets C4, K4, V4 = ⌈·/4⌉, NT, NX; sP has 4·C4 rows so that a tile never reads past it.
// Decays inside a chunk use 4-token blocks b with B_b = G before the block (0 for the first)
// and E_b = G at its last row, so Q̂ = q ⊙ exp(G − B), K̂ = k ⊙ exp(E − G) and, for blocks
// bj < bi, exp(G_i − G_j) = exp(G_i − B_bi) · exp(B_bi − E_bj) · exp(E_bj − G_j): every
// exponent ≤ 0, and one exponential per key for a whole off-diagonal 4×4 tile. Diagonal tiles
// take exp(G_i − G_j) as products of the three neighbouring steps' (three per key).
override C4: u32 = 16;
override K4: u32 = 16;
override V4: u32 = 16;
override D: u32 = 16;    // slab depth (a multiple of 4)
override D4: u32 = 4;
override NT: u32 = 256;  // invocations: the largest of the 4×4 tile grids
override NX: u32 = 1024; // vec4s of sX, the largest any phase needs

// Register tiles are mat4x4f whose column m holds row m of the 4×4 tile, so t[m] is a vec4 of
// four adjacent output columns (constant indices only: nothing spills to private arrays).
// o + A·B over a 4-deep block: a[m] is row m of A (4 depths), b[d] row d of B.
fn mma(o: mat4x4f, a: mat4x4f, b: mat4x4f) -> mat4x4f {
  return o + b * a;
}

// o + A·Bᵀ over a 4-deep block: a[m], b[n] are rows of A and B (4 depths each).
fn mmt(o: mat4x4f, a: mat4x4f, b: mat4x4f) -> mat4x4f {
  return o + transpose(b) * a;
}

// o + a ⊗ b: row m of the tile gains a[m]·b (one depth step of Aᵀ·B).
fn outer(o: mat4x4f, a: vec4f, b: vec4f) -> mat4x4f {
  return o + mat4x4f(a.x * b, a.y * b, a.z * b, a.w * b);
}

// Four vec4 rows of sX, `stride` vec4s apart.
fn rows_x(at: u32, stride: u32) -> mat4x4f {
  return mat4x4f(sX[at], sX[at + stride], sX[at + 2u * stride], sX[at + 3u * stride]);
}

// Keeps the lower triangle (diagonal included) of a diagonal 4×4 tile.
fn tril4(a: mat4x4f) -> mat4x4f {
  return mat4x4f(a[0] * vec4f(1.0, 0.0, 0.0, 0.0), a[1] * vec4f(1.0, 1.0, 0.0, 0.0),
    a[2] * vec4f(1.0, 1.0, 1.0, 0.0), a[3]);
}

// Row-wise scaling of a tile: row m times f (a per-column factor shared by the 4 rows).
fn scale_cols(a: mat4x4f, f: vec4f) -> mat4x4f {
  return mat4x4f(a[0] * f, a[1] * f, a[2] * f, a[3] * f);
}

// exp(G_i − G_j) inside a 4-token block, j < i, from the three neighbouring steps: (e10, e21,
// e32) and (e20, e31, e30). Products of factors ≤ 1, so half the exponentials of taking each.
struct Decays {
  e10: vec4f,
  e21: vec4f,
  e32: vec4f,
  e20: vec4f,
  e31: vec4f,
  e30: vec4f,
}

fn decays(g: mat4x4f) -> Decays {
  let e10 = exp(g[1] - g[0]);
  let e21 = exp(g[2] - g[1]);
  let e32 = exp(g[3] - g[2]);
  let e31 = e32 * e21;
  return Decays(e10, e21, e32, e21 * e10, e31, e31 * e10);
}

// A diagonal 4×4 tile of Σ_l x_il y_jl exp(G_il − G_jl) (j ≤ i) over a 4-deep key block: x, y,
// g are the block's rows of the two operands and of G.
fn diag_tile(o: mat4x4f, x: mat4x4f, y: mat4x4f, g: mat4x4f) -> mat4x4f {
  let e = decays(g);
  return o + mat4x4f(
    vec4f(dot(x[0], y[0]), 0.0, 0.0, 0.0),
    vec4f(dot(x[1] * e.e10, y[0]), dot(x[1], y[1]), 0.0, 0.0),
    vec4f(dot(x[2] * e.e20, y[0]), dot(x[2] * e.e21, y[1]), dot(x[2], y[2]), 0.0),
    vec4f(dot(x[3] * e.e30, y[0]), dot(x[3] * e.e31, y[1]), dot(x[3] * e.e32, y[2]),
      dot(x[3], y[3])),
  );
}

// Row t of a [rows][K] input, columns 4b…4b+3 (zero past K).
fn ld4_q(r: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * b + j < K) { x[j] = ld_q(r + 4u * b + j); }
  }
  return x;
}
fn ld4_k(r: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * b + j < K) { x[j] = ld_k(r + 4u * b + j); }
  }
  return x;
}
fn ld4_v(r: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * b + j < V) { x[j] = ld_v(r + 4u * b + j); }
  }
  return x;
}
fn ld4_do(r: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * b + j < V) { x[j] = ld_do(r + 4u * b + j); }
  }
  return x;
}

// G of chunk row t (wsg after bwd_local; rows past the sequence end repeat the last), columns
// 4b…4b+3 (zero past K).
fn ld4_g(gb: u32, t: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * b + j < K) { x[j] = wsg[gb + t * K + 4u * b + j]; }
  }
  return x;
}
