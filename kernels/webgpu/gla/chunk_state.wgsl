// gla pass 1: per (chunk n, head bh), with G the inclusive cumsum of g within the chunk and
// Γ = G at its last token, the chunk's own state ΔS = (K ⊙ exp(Γ − G))ᵀ V [K×V] and Γ [K],
// written to ws [B·H, NC, K·V + K] (f32). Every exponent Γ − G_t is a sum of later gates, so
// ≤ 0 for decays. Invocations form an RK×RV grid owning MT×MT entries of ΔS, as in la.
override RK: u32 = 16;
override RV: u32 = 16;
override TT: u32 = 16;  // tokens per shared-memory tile

var<workgroup> sk: array<f32, TT * K>;  // raw g, then k·exp(Γ − G) [TT][K]
var<workgroup> sv: array<f32, TT * V>;  // v tile [TT][V]
var<workgroup> sgam: array<f32, K>;     // Γ
var<workgroup> srun: array<f32, K>;     // G of the token before this tile

@compute @workgroup_size(RK * RV)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let WGN = RK * RV;
  let tr = lid / RV;
  let tc = lid % RV;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  for (var kk = lid; kk < K; kk += WGN) {
    var s = 0.0;
    for (var t = 0u; t < len; t++) { s += ld_g(row_base(bh, t0 + t, K) + kk); }
    sgam[kk] = s;
    srun[kk] = 0.0;
  }
  var acc: array<array<f32, MT>, MT>;
  for (var s0 = 0u; s0 < len; s0 += TT) {
    for (var e = lid; e < TT * K; e += WGN) {
      let s = e / K;
      var x = 0.0;
      if (s0 + s < len) { x = ld_g(row_base(bh, t0 + s0 + s, K) + e % K); }
      sk[e] = x;
    }
    for (var e = lid; e < TT * V; e += WGN) {
      let s = e / V;
      var x = 0.0;
      if (s0 + s < len) { x = ld_v(row_base(bh, t0 + s0 + s, V) + e % V); }
      sv[e] = x;
    }
    workgroupBarrier();
    // One invocation per key column walks the tile's tokens, turning gates into weights.
    for (var kk = lid; kk < K; kk += WGN) {
      var run = srun[kk];
      for (var s = 0u; s < TT; s++) {
        run += sk[s * K + kk];
        var w = 0.0;
        if (s0 + s < len) { w = ld_k(row_base(bh, t0 + s0 + s, K) + kk) * exp(sgam[kk] - run); }
        sk[s * K + kk] = w;
      }
      srun[kk] = run;
    }
    workgroupBarrier();
    for (var s = 0u; s < TT; s++) {
      var a: array<f32, MT>;
      var b: array<f32, MT>;
      for (var i = 0u; i < MT; i++) { a[i] = sk[s * K + min(tr + i * RK, K - 1u)]; }
      for (var j = 0u; j < MT; j++) { b[j] = sv[s * V + min(tc + j * RV, V - 1u)]; }
      for (var i = 0u; i < MT; i++) {
        for (var j = 0u; j < MT; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  let base = (bh * p.NC + n) * (K * V + K);
  for (var i = 0u; i < MT; i++) {
    let kr = tr + i * RK;
    if (kr >= K) { continue; }
    for (var j = 0u; j < MT; j++) {
      let vc = tc + j * RV;
      if (vc < V) { ws[base + kr * V + vc] = acc[i][j]; }
    }
    if (tc == 0u) { ws[base + K * V + kr] = sgam[kr]; }
  }
}
