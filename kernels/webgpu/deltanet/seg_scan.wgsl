// deltanet segmented forward, pass 3: per (block of 4·RC value columns, head bh) the state at
// every segment start, from h0: S ← M_s S + B_s, one segment after another (NSEG steps, each a
// K×K by K×4·RC product, fp32). S before segment s replaces B_s in wsg (seg_out.wgsl starts
// from it); the last S is final_state. Invocation (k, c) owns row k, columns 4c…4c+3 of S; M_s
// streams through workgroup memory in slices of 4·MS keys so that K = 128 fits too.
override MS: u32 = 16;  // vec4 columns of M per slice

var<workgroup> sM: array<vec4f, K * MS>;       // M_s rows, one slice [K][MS]
var<workgroup> sS: array<vec4f, 4u * RK * RC>; // S [4·RK][RC], rows past K zero

@compute @workgroup_size(WGN)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let k = lid / RC;
  let c = lid % RC;
  let col = 4u * (RC * wid.x + c);
  let act = k < K && col < V;
  let KW = K + V;
  for (var e = K * RC + lid; e < 4u * RK * RC; e += WGN) { sS[e] = vec4f(0.0); }
  var st = vec4f(0.0);
  if (act && p.has_h0 != 0u) {
    let at = bh * K * V + k * V + col;
    st.x = h0[at];
    if (col + 1u < V) { st.y = h0[at + 1u]; }
    if (col + 2u < V) { st.z = h0[at + 2u]; }
    if (col + 3u < V) { st.w = h0[at + 3u]; }
  }
  let nseg = (p.NC + CPS - 1u) / CPS;
  for (var s = 0u; s < nseg; s++) {
    let base = (bh * nseg + s) * K * KW;
    let at = base + k * KW + K + col;
    var acc = vec4f(0.0);
    if (act) {
      acc = ld4_wsg(at, V - col);
      st4_wsg(at, V - col, st);
    }
    if (k < K) { sS[k * RC + c] = st; }
    for (var m0 = 0u; m0 < RK; m0 += MS) {
      workgroupBarrier();
      for (var e = lid; e < K * MS; e += WGN) {
        let m4 = 4u * (m0 + e % MS);
        var x = vec4f(0.0);
        if (m4 < K) { x = ld4_wsg(base + (e / MS) * KW + m4, K - m4); }
        sM[e] = x;
      }
      workgroupBarrier();
      if (k < K) {
        for (var m = 0u; m < min(MS, RK - m0); m++) {
          let at = 4u * (m0 + m) * RC + c;
          acc = mac4(acc, sM[k * MS + m], sS[at], sS[at + RC], sS[at + 2u * RC], sS[at + 3u * RC]);
        }
      }
    }
    workgroupBarrier();
    st = acc;
  }
  if (act) {
    let at = bh * K * V + k * V + col;
    final_state[at] = st.x;
    if (col + 1u < V) { final_state[at + 1u] = st.y; }
    if (col + 2u < V) { final_state[at + 2u] = st.z; }
    if (col + 3u < V) { final_state[at + 3u] = st.w; }
  }
}
