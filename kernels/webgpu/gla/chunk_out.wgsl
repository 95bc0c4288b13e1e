// gla pass 3: per (chunk n, head bh) the outputs O = scale · [(Q ⊙ exp(G)) S_prev + A V] with
// A_ij = Σ_l q_il k_jl exp(G_il − G_jl) for j ≤ i (exponents ≤ 0; never exp(G)·exp(−G)).
// S_prev comes from ws after the scan. Same invocation grid as la's pass 3: rows
// t = tr + i·RT, output columns in pairs v = 2(tc + j·RV) + {0,1}, score columns tc + j·RV.
override RT: u32 = 16;
override RV: u32 = 16;
override KT: u32 = 16;  // depth of a shared-memory tile (keys, then tokens)

var<workgroup> sA: array<f32, C * C>;   // masked scores [C][C]
var<workgroup> sQ: array<f32, KT * C>;  // q tile, transposed [KT][C]
var<workgroup> sK: array<f32, KT * C>;  // k tile, transposed [KT][C]
var<workgroup> sG: array<f32, KT * C>;  // g, then its within-chunk cumsum G [KT][C]
var<workgroup> sX: array<f32, KT * V>;  // S_prev rows or v rows [KT][V]

@compute @workgroup_size(RT * RV)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let WGN = RT * RV;
  let tr = lid / RV;
  let tc = lid % RV;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let base = (bh * p.NC + n) * (K * V + K);
  // vec4 accumulators over the invocation's 4 rows, one per column (constant indices only:
  // dynamically indexed private arrays can end up in local memory).
  var accA0 = vec4f(0.0);
  var accA1 = vec4f(0.0);
  var accA2 = vec4f(0.0);
  var accA3 = vec4f(0.0);
  var accO0 = vec4f(0.0);
  var accO1 = vec4f(0.0);
  var accO2 = vec4f(0.0);
  var accO3 = vec4f(0.0);
  let trow = vec4u(tr, tr + RT, tr + 2u * RT, tr + 3u * RT);
  let rows = min(trow, vec4u(C - 1u));
  let scol = vec4u(tc, tc + RV, tc + 2u * RV, tc + 3u * RV);
  let sc = min(scol, vec4u(C - 1u));
  let vcol = min(
    vec4u(2u * tc, 2u * tc + 1u, 2u * (tc + RV), 2u * (tc + RV) + 1u),
    vec4u(V - 1u),
  );

  for (var k0 = 0u; k0 < K; k0 += KT) {
    for (var e = lid; e < C * KT; e += WGN) {
      let t = e / KT;
      let kk = e % KT;
      var xq = 0.0;
      var xk = 0.0;
      var xg = 0.0;
      if (t < len && k0 + kk < K) {
        let r = row_base(bh, t0 + t, K) + k0 + kk;
        xq = ld_q(r);
        xk = ld_k(r);
        xg = ld_g(r);
      }
      sQ[kk * C + t] = xq;
      sK[kk * C + t] = xk;
      sG[kk * C + t] = xg;
    }
    for (var e = lid; e < KT * V; e += WGN) {
      let kk = e / V;
      var x = 0.0;
      if (k0 + kk < K) { x = ws[base + (k0 + kk) * V + e % V]; }
      sX[e] = x;
    }
    workgroupBarrier();
    for (var kk = lid; kk < KT; kk += WGN) {
      var run = 0.0;
      for (var t = 0u; t < C; t++) {
        run += sG[kk * C + t];
        sG[kk * C + t] = run;
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < KT; kk++) {
      let q = kk * C;
      let a = vec4f(sQ[q + rows.x], sQ[q + rows.y], sQ[q + rows.z], sQ[q + rows.w]);
      let ga = vec4f(sG[q + rows.x], sG[q + rows.y], sG[q + rows.z], sG[q + rows.w]);
      accA0 = fma(a * sK[q + sc.x], decay(ga, sG[q + sc.x], scol.x, trow), accA0);
      accA1 = fma(a * sK[q + sc.y], decay(ga, sG[q + sc.y], scol.y, trow), accA1);
      accA2 = fma(a * sK[q + sc.z], decay(ga, sG[q + sc.z], scol.z, trow), accA2);
      accA3 = fma(a * sK[q + sc.w], decay(ga, sG[q + sc.w], scol.w, trow), accA3);
      let ae = a * exp(ga);
      let x = kk * V;
      accO0 = fma(ae, vec4f(sX[x + vcol.x]), accO0);
      accO1 = fma(ae, vec4f(sX[x + vcol.y]), accO1);
      accO2 = fma(ae, vec4f(sX[x + vcol.z]), accO2);
      accO3 = fma(ae, vec4f(sX[x + vcol.w]), accO3);
    }
    workgroupBarrier();
  }

  mask_store(accA0, tr, scol.x, len);
  mask_store(accA1, tr, scol.y, len);
  mask_store(accA2, tr, scol.z, len);
  mask_store(accA3, tr, scol.w, len);
  workgroupBarrier();

  for (var s0 = 0u; s0 < len; s0 += KT) {
    for (var e = lid; e < KT * V; e += WGN) {
      let s = e / V;
      var x = 0.0;
      if (s0 + s < len) { x = ld_v(row_base(bh, t0 + s0 + s, V) + e % V); }
      sX[e] = x;
    }
    workgroupBarrier();
    for (var ss = 0u; ss < KT; ss++) {
      let s = min(s0 + ss, C - 1u);
      let a = vec4f(sA[rows.x * C + s], sA[rows.y * C + s], sA[rows.z * C + s], sA[rows.w * C + s]);
      let x = ss * V;
      accO0 = fma(a, vec4f(sX[x + vcol.x]), accO0);
      accO1 = fma(a, vec4f(sX[x + vcol.y]), accO1);
      accO2 = fma(a, vec4f(sX[x + vcol.z]), accO2);
      accO3 = fma(a, vec4f(sX[x + vcol.w]), accO3);
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < MT; i++) {
    let t = tr + i * RT;
    if (t >= len) { continue; }
    let r = row_base(bh, t0 + t, V);
    let v0 = 2u * tc;
    if (v0 < V) { st2_o(r + v0, accO0[i] * p.scale, accO1[i] * p.scale, v0 + 1u < V); }
    let v1 = 2u * (tc + RV);
    if (v1 < V) { st2_o(r + v1, accO2[i] * p.scale, accO3[i] * p.scale, v1 + 1u < V); }
  }
}

// exp(G_t − G_s) for the 4 rows t against key column s, 0 where s > t (the exponent could
// then be positive and overflow).
fn decay(ga: vec4f, gb: f32, s: u32, t: vec4u) -> vec4f {
  return select(vec4f(0.0), exp(ga - vec4f(gb)), vec4u(s) <= t);
}

// Masked scores of one column s (4 rows tr + i·RT) into sA: kept for s ≤ t < len, else 0.
fn mask_store(acc: vec4f, tr: u32, s: u32, len: u32) {
  for (var i = 0u; i < MT; i++) {
    let t = tr + i * RT;
    if (t < C && s < C) { sA[t * C + s] = select(0.0, acc[i], s <= t && t < len); }
  }
}
