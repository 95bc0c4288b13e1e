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
  // Accumulators are vec4s over the invocation's 4 rows, one per column, all indexed by
  // constants: dynamically indexed private arrays can end up in (slow) local memory.
  var accA0 = vec4f(0.0);
  var accA1 = vec4f(0.0);
  var accA2 = vec4f(0.0);
  var accA3 = vec4f(0.0);
  var accO0 = vec4f(0.0);
  var accO1 = vec4f(0.0);
  var accO2 = vec4f(0.0);
  var accO3 = vec4f(0.0);
  var den = vec4f(0.0);
  let rows = min(vec4u(tr, tr + RT, tr + 2u * RT, tr + 3u * RT), vec4u(C - 1u));
  let scol = min(vec4u(tc, tc + RV, tc + 2u * RV, tc + 3u * RV), vec4u(C - 1u));
  let vcol = min(
    vec4u(2u * tc, 2u * tc + 1u, 2u * (tc + RV), 2u * (tc + RV) + 1u),
    vec4u(V - 1u),
  );

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
      let q = kk * C;
      let a = vec4f(sQ[q + rows.x], sQ[q + rows.y], sQ[q + rows.z], sQ[q + rows.w]);
      accA0 = fma(a, vec4f(sK[q + scol.x]), accA0);
      accA1 = fma(a, vec4f(sK[q + scol.y]), accA1);
      accA2 = fma(a, vec4f(sK[q + scol.z]), accA2);
      accA3 = fma(a, vec4f(sK[q + scol.w]), accA3);
      let x = kk * V;
      accO0 = fma(a, vec4f(sX[x + vcol.x]), accO0);
      accO1 = fma(a, vec4f(sX[x + vcol.y]), accO1);
      accO2 = fma(a, vec4f(sX[x + vcol.z]), accO2);
      accO3 = fma(a, vec4f(sX[x + vcol.w]), accO3);
      den = fma(a, vec4f(z), den);
    }
    workgroupBarrier();
  }

  // Causal mask (inclusive), scores to shared memory.
  mask_store(accA0, tr, tc, len);
  mask_store(accA1, tr, tc + RV, len);
  mask_store(accA2, tr, tc + 2u * RV, len);
  mask_store(accA3, tr, tc + 3u * RV, len);
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
      let a = vec4f(sA[rows.x * C + s], sA[rows.y * C + s], sA[rows.z * C + s], sA[rows.w * C + s]);
      let x = ss * V;
      accO0 = fma(a, vec4f(sX[x + vcol.x]), accO0);
      accO1 = fma(a, vec4f(sX[x + vcol.y]), accO1);
      accO2 = fma(a, vec4f(sX[x + vcol.z]), accO2);
      accO3 = fma(a, vec4f(sX[x + vcol.w]), accO3);
      if (s0 + ss < len) { den += a; }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < MT; i++) {
    let t = tr + i * RT;
    if (t >= len) { continue; }
    let r = row_base(bh, t0 + t, V);
    let inv = select(p.scale, 1.0 / (den[i] + 1e-6), NORMALIZE);
    let v0 = 2u * tc;
    if (v0 < V) { st2_o(r + v0, accO0[i] * inv, accO1[i] * inv, v0 + 1u < V); }
    let v1 = 2u * (tc + RV);
    if (v1 < V) { st2_o(r + v1, accO2[i] * inv, accO3[i] * inv, v1 + 1u < V); }
  }
}

// Masked scores of one column s (4 rows tr + i·RT) into sA: kept for s ≤ t < len, else 0.
fn mask_store(acc: vec4f, tr: u32, s: u32, len: u32) {
  for (var i = 0u; i < MT; i++) {
    let t = tr + i * RT;
    if (t < C && s < C) { sA[t * C + s] = select(0.0, acc[i], s <= t && t < len); }
  }
}
