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
  // vec4 accumulators over the invocation's 4 rows, one per column (constant indices only).
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  var zacc = vec4f(0.0);
  let rows = min(vec4u(tr, tr + RK, tr + 2u * RK, tr + 3u * RK), vec4u(K - 1u));
  let cols = min(vec4u(tc, tc + RV, tc + 2u * RV, tc + 3u * RV), vec4u(V - 1u));
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
      let k = s * K;
      let v = s * V;
      let a = vec4f(sk[k + rows.x], sk[k + rows.y], sk[k + rows.z], sk[k + rows.w]);
      zacc += a;
      acc0 = fma(a, vec4f(sv[v + cols.x]), acc0);
      acc1 = fma(a, vec4f(sv[v + cols.y]), acc1);
      acc2 = fma(a, vec4f(sv[v + cols.z]), acc2);
      acc3 = fma(a, vec4f(sv[v + cols.w]), acc3);
    }
    workgroupBarrier();
  }
  let base = (wid.y * p.NC + n) * (K * V + K);
  for (var i = 0u; i < MT; i++) {
    let kr = tr + i * RK;
    if (kr >= K) { continue; }
    let row = base + kr * V;
    if (tc < V) { ws[row + tc] = acc0[i]; }
    if (tc + RV < V) { ws[row + tc + RV] = acc1[i]; }
    if (tc + 2u * RV < V) { ws[row + tc + 2u * RV] = acc2[i]; }
    if (tc + 3u * RV < V) { ws[row + tc + 3u * RV] = acc3[i]; }
    if (tc == 0u) { ws[base + K * V + kr] = zacc[i]; }
  }
}
