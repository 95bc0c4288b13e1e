// Shared by la's per-chunk backward passes. Operands live in workgroup memory as vec4 rows and
// every invocation owns 4×4 register tiles, as in seg_out.wgsl. Products stream over slabs of
// depth D (D4 vec4 blocks) so that only the C×C score matrix is held whole: 16 KiB at C = 64,
// leaving 16 KiB of lavapipe's 32 for the slabs. The host sets C4, K4, V4 = ⌈·/4⌉ and NT;
// slabs and sP have 4·C4 rows so that a tile never reads past them when C % 4 ≠ 0.
override C4: u32 = 16;
override K4: u32 = 16;
override V4: u32 = 16;
override D: u32 = 16;    // slab depth (a multiple of 4)
override D4: u32 = 4;
override NT: u32 = 256;  // invocations: the largest of the 4×4 tile grids
override NX: u32 = 1024; // vec4s of sX, the largest any phase needs
override PW: u32 = 16;   // vec4s per row of sP: max(C4, V4)

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

// Four vec4 rows of sX or sP, `stride` vec4s apart.
fn rows_x(at: u32, stride: u32) -> mat4x4f {
  return mat4x4f(sX[at], sX[at + stride], sX[at + 2u * stride], sX[at + 3u * stride]);
}
fn rows_p(at: u32, stride: u32) -> mat4x4f {
  return mat4x4f(sP[at], sP[at + stride], sP[at + 2u * stride], sP[at + 3u * stride]);
}

// Row r of a [rows][K] tensor as φ(x), columns 4b…4b+3 (zero past K).
fn phi4_q(r: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * b + j < K) { x[j] = phi(ld_q(r + 4u * b + j)); }
  }
  return x;
}
fn phi4_k(r: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * b + j < K) { x[j] = phi(ld_k(r + 4u * b + j)); }
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

// Row k of the K×V state at ws[at] (or dS at wsd[at]), columns 4b…4b+3 (zero past K, V).
fn ld4_ws(at: u32, k: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  if (k < K) {
    for (var j = 0u; j < 4u; j++) {
      if (4u * b + j < V) { x[j] = ws[at + k * V + 4u * b + j]; }
    }
  }
  return x;
}
fn ld4_wsd(at: u32, k: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  if (k < K) {
    for (var j = 0u; j < 4u; j++) {
      if (4u * b + j < V) { x[j] = wsd[at + k * V + 4u * b + j]; }
    }
  }
  return x;
}

// Chunk row t of ∂N in wsn (rows of V + 1: ∂N, then ∂D), columns 4b…4b+3 (zero past V).
fn ld4_dn(nb: u32, t: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * b + j < V) { x[j] = wsn[nb + t * (V + 1u) + 4u * b + j]; }
  }
  return x;
}

// Keeps the lower triangle (diagonal included) of a diagonal 4×4 tile.
fn tril4(a: mat4x4f) -> mat4x4f {
  return mat4x4f(a[0] * vec4f(1.0, 0.0, 0.0, 0.0), a[1] * vec4f(1.0, 1.0, 0.0, 0.0),
    a[2] * vec4f(1.0, 1.0, 1.0, 0.0), a[3]);
}

fn dphi(x: f32) -> f32 {
  return select(exp(x), 1.0, x > 0.0);
}

// Row t (< len) of dO, columns 4b…4b+3; zero past the chunk's end or V.
fn ld4_do(bh: u32, t0: u32, t: u32, len: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  if (t < len) {
    let r = row_base(bh, t0 + t, V);
    for (var j = 0u; j < 4u; j++) {
      if (4u * b + j < V) { x[j] = ld_do(r + 4u * b + j); }
    }
  }
  return x;
}
