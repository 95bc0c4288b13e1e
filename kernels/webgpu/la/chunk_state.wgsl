// la workspace ws [B·H, NC, K·V + K] f32: per chunk its local state φ(K)ᵀV then Σφ(K); after
// the scan (pass 2), the state and key sum before that chunk (exclusive prefix, h0/z0 included).
// Pass 1: per (chunk n, head bh) the chunk's local state ΔS = φ(K_n)ᵀ V_n [K×V] and
// Δz = Σ_t φ(k_t) [K], written to ws. One workgroup per (n, bh); invocations form an
// RK×RV grid, each owning MT rows k = tr + i·RK and MT columns v = tc + j·RV.
override RK: u32 = 16;
override RV: u32 = 16;
override TT: u32 = 16;  // tokens per shared-memory tile

var<workgroup> sk: array<f32, TT * K>;  // φ(k) tile [TT][K]
var<workgroup> sv: array<f32, TT * V>;  // v tile [TT][V]

@compute @workgroup_size(RK * RV)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let tr = lid / RV;
  let tc = lid % RV;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  var acc: array<array<f32, MT>, MT>;
  var zacc: array<f32, MT>;
  for (var s0 = 0u; s0 < len; s0 += TT) {
    for (var e = lid; e < TT * K; e += RK * RV) {
      let s = e / K;
      let kk = e % K;
      var x = 0.0;
      if (s0 + s < len) { x = phi(ld_k(row_base(bh, t0 + s0 + s, K) + kk)); }
      sk[e] = x;
    }
    for (var e = lid; e < TT * V; e += RK * RV) {
      let s = e / V;
      let vv = e % V;
      var x = 0.0;
      if (s0 + s < len) { x = ld_v(row_base(bh, t0 + s0 + s, V) + vv); }
      sv[e] = x;
    }
    workgroupBarrier();
    for (var s = 0u; s < TT; s++) {
      var a: array<f32, MT>;
      var b: array<f32, MT>;
      for (var i = 0u; i < MT; i++) { a[i] = sk[s * K + min(tr + i * RK, K - 1u)]; }
      for (var j = 0u; j < MT; j++) { b[j] = sv[s * V + min(tc + j * RV, V - 1u)]; }
      for (var i = 0u; i < MT; i++) {
        zacc[i] += a[i];
        for (var j = 0u; j < MT; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  let base = (wid.y * p.NC + n) * (K * V + K);
  for (var i = 0u; i < MT; i++) {
    let kr = tr + i * RK;
    if (kr >= K) { continue; }
    for (var j = 0u; j < MT; j++) {
      let vc = tc + j * RV;
      if (vc < V) { ws[base + kr * V + vc] = acc[i][j]; }
    }
    if (tc == 0u) { ws[base + K * V + kr] = zacc[i]; }
  }
}
