// Segmented forward, pass 1: per (segment, head) the segment's local state ΔS = φ(K)ᵀV [K×V]
// and Δz = Σφ(k) [K] into ws [heads][segments][K·V + K]. Tokens stream through workgroup memory
// TT at a time as vec4 rows; invocation lid < K4·V4 owns state rows 4kr…4kr+3, columns 4c…4c+3
// (one vec4 load of φ(k) and one of v per token feed its 16 FMAs).
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
      let s = e / K4;
      let d4 = e % K4;
      var x = vec4f(0.0);
      if (s < len) {
        let rb = row_base(bh, t0 + s, K);
        for (var j = 0u; j < 4u; j++) {
          if (4u * d4 + j < K) { x[j] = phi(ld_k(rb + 4u * d4 + j)); }
        }
      }
      sK[e] = x;
    }
    for (var e = lid; e < TT * V4; e += NT) {
      let s = e / V4;
      let d4 = e % V4;
      var x = vec4f(0.0);
      if (s < len) {
        let rb = row_base(bh, t0 + s, V);
        for (var j = 0u; j < 4u; j++) {
          if (4u * d4 + j < V) { x[j] = ld_v(rb + 4u * d4 + j); }
        }
      }
      sV[e] = x;
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
    st4_ws(base, 4u * kr, c, s0);
    st4_ws(base, 4u * kr + 1u, c, s1);
    st4_ws(base, 4u * kr + 2u, c, s2);
    st4_ws(base, 4u * kr + 3u, c, s3);
  }
  if (lid < K4) {
    for (var j = 0u; j < 4u; j++) {
      if (4u * lid + j < K) { ws[base + K * V + 4u * lid + j] = z[j]; }
    }
  }
}

// ws state row k, columns 4c…4c+3 (those inside K, V).
fn st4_ws(base: u32, k: u32, c: u32, x: vec4f) {
  if (k >= K) { return; }
  for (var j = 0u; j < 4u; j++) {
    if (4u * c + j < V) { ws[base + k * V + 4u * c + j] = x[j]; }
  }
}
