// Shared by the segmented deltanet forward (seg_sum.wgsl, seg_scan.wgsl, seg_out.wgsl). The
// walks (seg_sum, seg_out) hold a state tile [K × 4·RC] in registers, a 4×4 tile per invocation
// of a max(RK, RT)×RC grid, and keep every chunk operand in workgroup memory as vec4 rows (zero
// past K, C and the tile's columns), so each register tile is fed by vec4 loads only. Workspace
// rows are read and written through ld4_<ws> / st4_<ws> (kernel.ts vec4Accessors).
override RK: u32 = 16;    // ⌈K/4⌉
override RT: u32 = 16;    // ⌈C/4⌉
override RC: u32 = 16;    // state columns per workgroup / 4
override WGN: u32 = 256;  // invocations
override CPS: u32 = 16;   // chunks per segment

// o + a.x·b0 + a.y·b1 + a.z·b2 + a.w·b3: one row of a 4×4 tile times a 4-deep slab.
fn mac4(o: vec4f, a: vec4f, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) -> vec4f {
  return fma(vec4f(a.w), b3, fma(vec4f(a.z), b2, fma(vec4f(a.y), b1, fma(vec4f(a.x), b0, o))));
}
