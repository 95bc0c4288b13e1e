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
  // vec4 accumulators over the invocation's 4 rows, one per column (constant indices only).
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  let rows = min(vec4u(tr, tr + RK, tr + 2u * RK, tr + 3u * RK), vec4u(K - 1u));
  let cols = min(vec4u(tc, tc + RV, tc + 2u * RV, tc + 3u * RV), vec4u(V - 1u));
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
      let k = s * K;
      let v = s * V;
      let a = vec4f(sk[k + rows.x], sk[k + rows.y], sk[k + rows.z], sk[k + rows.w]);
      acc0 = fma(a, vec4f(sv[v + cols.x]), acc0);
      acc1 = fma(a, vec4f(sv[v + cols.y]), acc1);
      acc2 = fma(a, vec4f(sv[v + cols.z]), acc2);
      acc3 = fma(a, vec4f(sv[v + cols.w]), acc3);
    }
    workgroupBarrier();
  }
  let base = (bh * p.NC + n) * (K * V + K);
  for (var i = 0u; i < MT; i++) {
    let kr = tr + i * RK;
    if (kr >= K) { continue; }
    let row = base + kr * V;
    if (tc < V) { ws[row + tc] = acc0[i]; }
    if (tc + RV < V) { ws[row + tc + RV] = acc1[i]; }
    if (tc + 2u * RV < V) { ws[row + tc + 2u * RV] = acc2[i]; }
    if (tc + 3u * RV < V) { ws[row + tc + 3u * RV] = acc3[i]; }
    if (tc == 0u) { ws[base + K * V + kr] = sgam[kr]; }
  }
}
