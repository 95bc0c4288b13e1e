// deltanet segmented backward (fwdbwd, deltanet.bwd_seg = 2): per (block of 4·RC value columns,
// head bh) the state gradient after every segment, from dS = 0 after the last one (no gradient
// reaches final_state, as in bwd_rec.wgsl): segments in reverse, dS ← M_sᵀ dS + D_s (NSEG steps,
// each a K×K by K×4·RC product, fp32), with M_s the segment's forward map from seg_sum (wsg's M
// part, which seg_scan leaves alone) and D_s from bwd_seg.wgsl in wsg's B part, which dS after
// segment s replaces (bwd_seg.wgsl with RECORD starts from it). The last dS is dh0. Invocation
// (k, c) owns row k, columns 4c…4c+3 of dS, as in seg_scan.wgsl; M_s streams through workgroup
// memory transposed, in slices of 4·MS of its rows.
override MS: u32 = 16;  // vec4s of Mᵀ per row per slice

var<workgroup> sM: array<vec4f, K * MS>;        // Mᵀ rows, one slice [K][MS]
var<workgroup> sD: array<vec4f, 4u * RK * RC>;  // dS [4·RK][RC], rows past K zero

@compute @workgroup_size(WGN)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let k = lid / RC;
  let c = lid % RC;
  let col = 4u * (RC * wid.x + c);
  let act = k < K && col < V;
  let KW = K + V;
  for (var e = K * RC + lid; e < 4u * RK * RC; e += WGN) { sD[e] = vec4f(0.0); }
  var d = vec4f(0.0);
  let nseg = (p.NC + CPS - 1u) / CPS;
  for (var s = nseg; s > 0u; s--) {
    let base = (bh * nseg + s - 1u) * K * KW;
    let at = base + k * KW + K + col;
    var acc = vec4f(0.0);
    if (act) {
      acc = ld4_wsg(at, V - col);
      st4_wsg(at, V - col, d);
    }
    if (k < K) { sD[k * RC + c] = d; }
    for (var m0 = 0u; m0 < RK; m0 += MS) {
      workgroupBarrier();
      // Consecutive invocations take consecutive columns of one row of M_s.
      for (var e = lid; e < K * MS; e += WGN) {
        let j = e % K;
        let m4 = 4u * (m0 + e / K);
        let r = base + m4 * KW + j;
        var x = vec4f(0.0);
        if (m4 < K) { x.x = wsg[r]; }
        if (m4 + 1u < K) { x.y = wsg[r + KW]; }
        if (m4 + 2u < K) { x.z = wsg[r + 2u * KW]; }
        if (m4 + 3u < K) { x.w = wsg[r + 3u * KW]; }
        sM[j * MS + e / K] = x;
      }
      workgroupBarrier();
      if (k < K) {
        for (var m = 0u; m < min(MS, RK - m0); m++) {
          let at = 4u * (m0 + m) * RC + c;
          acc = mac4(acc, sM[k * MS + m], sD[at], sD[at + RC], sD[at + 2u * RC], sD[at + 3u * RC]);
        }
      }
    }
    workgroupBarrier();
    d = acc;
  }
  if (act && p.has_h0 != 0u) { st4_dh0(bh * K * V + k * V + col, V - col, d); }
}
