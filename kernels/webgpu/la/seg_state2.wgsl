// la.state = 2: seg_state.wgsl (see there) with the loaders of seg_load.wgsl: a tile's φ(k) and
// v blocks built from whole loads (two u32 words per block in f16/bf16 where rows have an even
// length), bounds as selects, and the state rows and key sum stored, all without vector
// components written or read at a run-time index. Everything else is unchanged.
override TT: u32 = 32;  // tokens per workgroup-memory tile
override SEGT: u32 = 4096;  // tokens per segment
override NT: u32 = 256;  // invocations (≥ K4·V4 and ≥ K4)
override K4: u32 = 16;
override V4: u32 = 16;
// ws slots per segment: 1 in mode fwd (Params.NC = segments); in fwdbwd with la.fwd_seg = 2
// (Params.NC = chunks, ws one slot per chunk) the chunks per segment, segment s at chunk s·CPS.
override CPS: u32 = 1;

var<workgroup> sK: array<vec4f, TT * K4>;  // φ(k) [TT][K4]
var<workgroup> sV: array<vec4f, TT * V4>;  // v [TT][V4]

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let seg = wid.x;
  let bh = wid.y;
  let tbeg = seg * SEGT;
  let tend = min(tbeg + SEGT, p.T);
  let isS = lid < K4 * V4;
  let kr = lid / V4;
  let c = lid % V4;
  var s0 = vec4f(0.0);
  var s1 = vec4f(0.0);
  var s2 = vec4f(0.0);
  var s3 = vec4f(0.0);
  var z = vec4f(0.0);
  for (var t0 = tbeg; t0 < tend; t0 += TT) {
    let len = min(TT, tend - t0);
    for (var e = lid; e < TT * K4; e += NT) {
      let b = blk(bh, t0, len, e, K4, K);
      sK[e] = cook_k(raw4_k(b.i, b.n), b);
    }
    for (var e = lid; e < TT * V4; e += NT) {
      let b = blk(bh, t0, len, e, V4, V);
      sV[e] = cook_v(raw4_v(b.i, b.n), b);
    }
    workgroupBarrier();
    if (isS) {
      for (var s = 0u; s < TT; s++) {
        let kk = sK[s * K4 + kr];
        let vv = sV[s * V4 + c];
        s0 = fma(vec4f(kk.x), vv, s0);
        s1 = fma(vec4f(kk.y), vv, s1);
        s2 = fma(vec4f(kk.z), vv, s2);
        s3 = fma(vec4f(kk.w), vv, s3);
      }
    }
    if (lid < K4) {
      for (var s = 0u; s < TT; s++) { z += sK[s * K4 + lid]; }
    }
    workgroupBarrier();
  }
  let base = (bh * p.NC + seg * CPS) * (K * V + K);
  if (isS) {
    st_srow(base, 4u * kr, c, s0);
    st_srow(base, 4u * kr + 1u, c, s1);
    st_srow(base, 4u * kr + 2u, c, s2);
    st_srow(base, 4u * kr + 3u, c, s3);
  }
  if (lid < K4) { st_zblk(base, lid, z); }
}
