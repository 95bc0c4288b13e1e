// deltanet pass 1: per (chunk n, head bh) the WY/UT transform of the chunk (docs/ops.md):
//   q, k l2-normalized per token (when flags & 1); A = tril(diag(β) K Kᵀ, −1);
//   N = (I + A)⁻¹ by forward substitution; W = N diag(β) K, U = N diag(β) V; P = tril(Q Kᵀ).
// Written per chunk to wsq, wsk (normalized q, k) and wsw [C][K], wsu [C][V], wsp [C][C]
// (f32; rows past the sequence end are zero), and for the backward (flags bit 2) N's strictly
// lower part into wsn [C][C]. Nothing here depends on the state, so every chunk runs in
// parallel; pass 2 (chunk_rec.wgsl) carries the state across chunks.
override WG: u32 = 256;
override DM: u32 = 64;  // max(K, V)

var<workgroup> sK: array<f32, C * K>;   // k rows, normalized, then scaled by β [C][K]
var<workgroup> sX: array<f32, C * DM>;  // q rows (normalized), then β·v rows [C][K or V]
var<workgroup> sA: array<f32, C * C>;   // A, then N's strictly lower part, in place [C][C]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let cb = (bh * p.NC + n) * C;  // first row of this chunk in the [B·H, NC, C, …] workspaces
  for (var e = lid; e < C * K; e += WG) {
    let t = e / K;
    var xq = 0.0;
    var xk = 0.0;
    if (t < len) {
      let r = row_base(bh, t0 + t, K) + e % K;
      xq = ld_q(r);
      xk = ld_k(r);
    }
    sX[e] = xq;
    sK[e] = xk;
  }
  workgroupBarrier();
  if ((p.flags & 1u) != 0u) {
    // Each row starts at its own column (c = (i + r) mod K): neighbouring invocations read rows
    // K floats apart, which would otherwise all fall in one memory bank.
    for (var t = lid; t < 2u * C; t += WG) {
      let r = t % C;
      var ss = 0.0;
      for (var i = 0u; i < K; i++) {
        let c = (i + r) % K;
        let x = select(sK[r * K + c], sX[r * K + c], t < C);
        ss = fma(x, x, ss);
      }
      let inv = inverseSqrt(ss + 1e-6);
      for (var i = 0u; i < K; i++) {
        let c = (i + r) % K;
        if (t < C) { sX[r * K + c] *= inv; } else { sK[r * K + c] *= inv; }
      }
    }
    workgroupBarrier();
  }
  for (var e = lid; e < C * K; e += WG) {
    wsq[cb * K + e] = sX[e];
    wsk[cb * K + e] = sK[e];
  }
  for (var e = lid; e < C * C; e += WG) {
    let i = e / C;
    let j = e % C;
    var qk = 0.0;
    var kk = 0.0;
    if (j <= i) {
      // Rotated start column, as above: consecutive j read rows of sK K floats apart.
      for (var m = 0u; m < K; m++) {
        let c = (m + j) % K;
        qk = fma(sX[i * K + c], sK[j * K + c], qk);
        kk = fma(sK[i * K + c], sK[j * K + c], kk);
      }
    }
    wsp[cb * C + e] = qk;
    var a = 0.0;
    if (j < i && i < len) { a = ld_beta(beta_at(bh, t0 + i)) * kk; }
    sA[e] = a;
  }
  workgroupBarrier();
  // β folded into the rows of K and V: W = N·(βK), U = N·(βV).
  for (var e = lid; e < C * DM; e += WG) {
    let t = e / DM;
    let c = e % DM;
    var b = 0.0;
    if (t < len) { b = ld_beta(beta_at(bh, t0 + t)); }
    if (c < K) { sK[t * K + c] *= b; }
    var x = 0.0;
    if (c < V && t < len) { x = b * ld_v(row_base(bh, t0 + t, V) + c); }
    if (c < V) { sX[t * V + c] = x; }
  }
  // Row i of N's strictly lower part: N_ij = −(A_ij + Σ_{j<m<i} A_im N_mj), rows in order.
  for (var i = 1u; i < C; i++) {
    var x = 0.0;
    let j = lid;
    if (j < i) {
      x = sA[i * C + j];
      for (var m = j + 1u; m < i; m++) { x = fma(sA[i * C + m], sA[m * C + j], x); }
      x = -x;
    }
    workgroupBarrier();
    if (j < i) { sA[i * C + j] = x; }
    workgroupBarrier();
  }
  workgroupBarrier();
  if ((p.flags & 4u) != 0u) {
    for (var e = lid; e < C * C; e += WG) { wsn[cb * C + e] = sA[e]; }
  }
  for (var e = lid; e < C * DM; e += WG) {
    let i = e / DM;
    let c = e % DM;
    var w = 0.0;
    var u = 0.0;
    for (var j = 0u; j <= i; j++) {
      let nij = select(sA[i * C + j], 1.0, j == i);
      if (c < K) { w = fma(nij, sK[j * K + c], w); }
      if (c < V) { u = fma(nij, sX[j * V + c], u); }
    }
    if (c < K) { wsw[cb * K + i * K + c] = w; }
    if (c < V) { wsu[cb * V + i * V + c] = u; }
  }
}
