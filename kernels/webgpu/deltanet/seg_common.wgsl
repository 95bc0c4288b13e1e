// Shared by the segmented deltanet forward (seg_sum.wgsl, seg_scan.wgsl, seg_out.wgsl). The
// walks (seg_sum, seg_out) hold a state tile [K × 4·RC] in registers, a 4×4 tile per invocation
// of a max(RK, RT)×RC grid, and keep every chunk operand in workgroup memory as vec4 rows (zero
// past K, C and the tile's columns), so each register tile is fed by vec4 loads only.
override RK: u32 = 16;    // ⌈K/4⌉
override RT: u32 = 16;    // ⌈C/4⌉
override RC: u32 = 16;    // state columns per workgroup / 4
override WGN: u32 = 256;  // invocations
override CPS: u32 = 16;   // chunks per segment

// o + a.x·b0 + a.y·b1 + a.z·b2 + a.w·b3: one row of a 4×4 tile times a 4-deep slab.
fn mac4(o: vec4f, a: vec4f, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) -> vec4f {
  return fma(vec4f(a.w), b3, fma(vec4f(a.z), b2, fma(vec4f(a.y), b1, fma(vec4f(a.x), b0, o))));
}

// The n (≥ 1) valid elements of 4 from `at` in an f32 workspace, zero-filled: rows of [C][D]
// workspaces are read in vec4 blocks whose last one may run past D.
fn ld4_wsw(at: u32, n: u32) -> vec4f {
  var x = vec4f(wsw[at], 0.0, 0.0, 0.0);
  if (n > 1u) { x.y = wsw[at + 1u]; }
  if (n > 2u) { x.z = wsw[at + 2u]; }
  if (n > 3u) { x.w = wsw[at + 3u]; }
  return x;
}

fn ld4_wsk(at: u32, n: u32) -> vec4f {
  var x = vec4f(wsk[at], 0.0, 0.0, 0.0);
  if (n > 1u) { x.y = wsk[at + 1u]; }
  if (n > 2u) { x.z = wsk[at + 2u]; }
  if (n > 3u) { x.w = wsk[at + 3u]; }
  return x;
}

fn ld4_wsg(at: u32, n: u32) -> vec4f {
  var x = vec4f(wsg[at], 0.0, 0.0, 0.0);
  if (n > 1u) { x.y = wsg[at + 1u]; }
  if (n > 2u) { x.z = wsg[at + 2u]; }
  if (n > 3u) { x.w = wsg[at + 3u]; }
  return x;
}

fn st4_wsg(at: u32, n: u32, x: vec4f) {
  wsg[at] = x.x;
  if (n > 1u) { wsg[at + 1u] = x.y; }
  if (n > 2u) { wsg[at + 2u] = x.z; }
  if (n > 3u) { wsg[at + 3u] = x.w; }
}
