// Pass 3: per (chunk n, head bh) the outputs
//   O = φ(Q)·S_prev + tril(φ(Q)φ(K)ᵀ)·V,  den = φ(Q)·z_prev + rowsum(tril(φ(Q)φ(K)ᵀ))
//   o = O / (den + 1e-6) when normalizing, else scale·O.
// S_prev, z_prev come from ws (after the scan). One workgroup per (n, bh); invocations form
// an RT×RV grid: rows t = tr + i·RT (i < MT); output columns in pairs v = 2(tc + j·RV) + {0,1}
// (j < MT/2) so that one invocation writes both halves of a packed bf16 word; columns of the
// score tile s = tc + j·RV (j < MT). The host picks RV ≥ max(V, C)/4, RT ≥ C/4.
override RT: u32 = 16;
override RV: u32 = 16;
override KT: u32 = 16;  // depth of a shared-memory tile (keys, then tokens)
override NORMALIZE: bool = true;

var<workgroup> sA: array<f32, C * C>;   // masked scores [C][C]
var<workgroup> sQ: array<f32, KT * C>;  // φ(q) tile, transposed [KT][C]
var<workgroup> sK: array<f32, KT * C>;  // φ(k) tile, transposed [KT][C]
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
  let base = (wid.y * p.NC + n) * (K * V + K);
  var accA: array<array<f32, MT>, MT>;
  var accO: array<array<f32, MT>, MT>;
  var den: array<f32, MT>;

  // Phase 1: scores and the inter-chunk term, over key tiles.
  for (var k0 = 0u; k0 < K; k0 += KT) {
    for (var e = lid; e < C * KT; e += WGN) {
      let t = e / KT;
      let kk = e % KT;
      var xq = 0.0;
      var xk = 0.0;
      if (t < len && k0 + kk < K) {
        let r = row_base(bh, t0 + t, K) + k0 + kk;
        xq = phi(ld_q(r));
        xk = phi(ld_k(r));
      }
      sQ[kk * C + t] = xq;
      sK[kk * C + t] = xk;
    }
    for (var e = lid; e < KT * V; e += WGN) {
      let kk = e / V;
      var x = 0.0;
      if (k0 + kk < K) { x = ws[base + (k0 + kk) * V + e % V]; }
      sX[e] = x;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < KT; kk++) {
      var z = 0.0;
      if (NORMALIZE && k0 + kk < K) { z = ws[base + K * V + k0 + kk]; }
      var a: array<f32, MT>;
      for (var i = 0u; i < MT; i++) { a[i] = sQ[kk * C + min(tr + i * RT, C - 1u)]; }
      for (var j = 0u; j < MT; j++) {
        let b = sK[kk * C + min(tc + j * RV, C - 1u)];
        for (var i = 0u; i < MT; i++) { accA[i][j] = fma(a[i], b, accA[i][j]); }
      }
      for (var j = 0u; j < MT; j++) {
        let b = sX[kk * V + min(2u * (tc + (j >> 1u) * RV) + (j & 1u), V - 1u)];
        for (var i = 0u; i < MT; i++) { accO[i][j] = fma(a[i], b, accO[i][j]); }
      }
      for (var i = 0u; i < MT; i++) { den[i] = fma(a[i], z, den[i]); }
    }
    workgroupBarrier();
  }

  // Causal mask (inclusive), scores to shared memory.
  for (var i = 0u; i < MT; i++) {
    let t = tr + i * RT;
    for (var j = 0u; j < MT; j++) {
      let s = tc + j * RV;
      if (t < C && s < C) { sA[t * C + s] = select(0.0, accA[i][j], s <= t && t < len); }
    }
  }
  workgroupBarrier();

  // Phase 2: the intra-chunk term, over token tiles of v.
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
      if (s0 + ss < len) {
        for (var i = 0u; i < MT; i++) { den[i] += a[i]; }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < MT; i++) {
    let t = tr + i * RT;
    if (t >= len) { continue; }
    let r = row_base(bh, t0 + t, V);
    let inv = select(p.scale, 1.0 / (den[i] + 1e-6), NORMALIZE);
    for (var jp = 0u; jp < MT / 2u; jp++) {
      let v0 = 2u * (tc + jp * RV);
      if (v0 < V) {
        st2_o(r + v0, accO[i][2u * jp] * inv, accO[i][2u * jp + 1u] * inv, v0 + 1u < V);
      }
    }
  }
}
