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
  var accA: array<array<f32, MT>, MT>;
  var accO: array<array<f32, MT>, MT>;

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
      var a: array<f32, MT>;
      var ga: array<f32, MT>;
      for (var i = 0u; i < MT; i++) {
        let t = min(tr + i * RT, C - 1u);
        a[i] = sQ[kk * C + t];
        ga[i] = sG[kk * C + t];
      }
      for (var j = 0u; j < MT; j++) {
        let s = min(tc + j * RV, C - 1u);
        let b = sK[kk * C + s];
        let gb = sG[kk * C + s];
        for (var i = 0u; i < MT; i++) {
          let w = select(0.0, exp(ga[i] - gb), s <= tr + i * RT);
          accA[i][j] = fma(a[i] * b, w, accA[i][j]);
        }
      }
      for (var i = 0u; i < MT; i++) { a[i] *= exp(ga[i]); }
      for (var j = 0u; j < MT; j++) {
        let b = sX[kk * V + min(2u * (tc + (j >> 1u) * RV) + (j & 1u), V - 1u)];
        for (var i = 0u; i < MT; i++) { accO[i][j] = fma(a[i], b, accO[i][j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < MT; i++) {
    let t = tr + i * RT;
    for (var j = 0u; j < MT; j++) {
      let s = tc + j * RV;
      if (t < C && s < C) { sA[t * C + s] = select(0.0, accA[i][j], s <= t && t < len); }
    }
  }
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
      var a: array<f32, MT>;
      for (var i = 0u; i < MT; i++) { a[i] = sA[min(tr + i * RT, C - 1u) * C + s]; }
      for (var j = 0u; j < MT; j++) {
        let b = sX[ss * V + min(2u * (tc + (j >> 1u) * RV) + (j & 1u), V - 1u)];
        for (var i = 0u; i < MT; i++) { accO[i][j] = fma(a[i], b, accO[i][j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < MT; i++) {
    let t = tr + i * RT;
    if (t >= len) { continue; }
    let r = row_base(bh, t0 + t, V);
    for (var jp = 0u; jp < MT / 2u; jp++) {
      let v0 = 2u * (tc + jp * RV);
      if (v0 < V) {
        st2_o(r + v0, accO[i][2u * jp] * p.scale, accO[i][2u * jp + 1u] * p.scale, v0 + 1u < V);
      }
    }
  }
}
