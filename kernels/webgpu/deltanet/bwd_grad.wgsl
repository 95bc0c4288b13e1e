// deltanet backward pass 2: per (chunk n, head bh), all chunks in parallel, from the forward's
// Q, K (normalized), W, V_new, P, N (wsq wsk wsw wsu wsp wsn), S before the chunk (wss), and
// pass 1's dS after it (wsds) and dV_new (wsdv); docs/ops.md's chunked backward with
// T = N diag(β) (Ñ = N with its unit diagonal):
//   dP = scale·tril(dO V_newᵀ); dW = −dV_new Sᵀ; dT = dV_new Vᵀ + dW Kᵀ
//   dQ = scale·dO Sᵀ + dP K;  dK = dPᵀ Q + V_new dSᵀ + Tᵀ dW + diag(β) dA K + (diag(β) dA)ᵀ K
//   dV = Tᵀ dV_new;  dA = −Ñᵀ (dT Tᵀ) (strictly lower);  dβ_j = Σ_r Ñ_rj dT_rj + Σ_{i<j} dA_ji k_j·k_i
// then the l2-norm backward on dQ, dK. Intermediates go through per-chunk f32 scratch:
// wsx [.., 3, C, C] (dP then dA; dT; dT Tᵀ) and wsy [.., 3, C, K] (dW; dK so far; dQ).
override WG: u32 = 256;

fn nt(cc: u32, i: u32, j: u32) -> f32 {  // Ñ_ij
  if (i == j) { return 1.0; }
  return select(0.0, wsn[cc + i * C + j], j < i);
}

// The l2-norm backward of one row (dy in wsy at yq, y = wsq row) stored as pairs into dq or dk.
fn l2n_back_q(bh: u32, t: u32, yq: u32, yrow: u32) {
  let rk = row_base(bh, t, K);
  var dot = 0.0;
  var ss = 0.0;
  for (var k = 0u; k < K; k++) {
    dot = fma(wsq[yrow + k], wsy[yq + k], dot);
    let x = ld_q(rk + k);
    ss = fma(x, x, ss);
  }
  let on = (p.flags & 1u) != 0u;
  let inv = select(1.0, inverseSqrt(ss + 1e-6), on);
  let c = select(0.0, dot, on);
  for (var k = 0u; k < K; k += 2u) {
    let k1 = min(k + 1u, K - 1u);
    st2_dq(
      rk + k,
      (wsy[yq + k] - wsq[yrow + k] * c) * inv,
      (wsy[yq + k1] - wsq[yrow + k1] * c) * inv,
      k + 1u < K,
    );
  }
}

fn l2n_back_k(bh: u32, t: u32, yz: u32, yrow: u32) {
  let rk = row_base(bh, t, K);
  var dot = 0.0;
  var ss = 0.0;
  for (var k = 0u; k < K; k++) {
    dot = fma(wsk[yrow + k], wsy[yz + k], dot);
    let x = ld_k(rk + k);
    ss = fma(x, x, ss);
  }
  let on = (p.flags & 1u) != 0u;
  let inv = select(1.0, inverseSqrt(ss + 1e-6), on);
  let c = select(0.0, dot, on);
  for (var k = 0u; k < K; k += 2u) {
    let k1 = min(k + 1u, K - 1u);
    st2_dk(
      rk + k,
      (wsy[yz + k] - wsk[yrow + k] * c) * inv,
      (wsy[yz + k1] - wsk[yrow + k1] * c) * inv,
      k + 1u < K,
    );
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let ch = bh * p.NC + n;
  let cb = ch * C;        // first row of the chunk in [.., C, ·] workspaces
  let cc = ch * C * C;    // the chunk's [C][C] in wsp, wsn
  let sb = ch * K * V;    // S before / dS after in wss, wsds
  let x1 = 3u * cc;
  let x2 = x1 + C * C;
  let x3 = x2 + C * C;
  let yw = 3u * cb * K;
  let yz = yw + C * K;
  let yq = yz + C * K;

  // dP and dW.
  for (var e = lid; e < C * C; e += WG) {
    let i = e / C;
    let j = e % C;
    var acc = 0.0;
    if (j <= i && i < len) {
      let ro = row_base(bh, t0 + i, V);
      for (var v = 0u; v < V; v++) { acc = fma(ld_do(ro + v), wsu[(cb + j) * V + v], acc); }
    }
    wsx[x1 + e] = p.scale * acc;
  }
  for (var e = lid; e < C * K; e += WG) {
    let r = e / K;
    let k = e % K;
    var acc = 0.0;
    for (var v = 0u; v < V; v++) { acc = fma(wsdv[(cb + r) * V + v], wss[sb + k * V + v], acc); }
    wsy[yw + e] = -acc;
  }
  storageBarrier();
  workgroupBarrier();

  // dT, dK so far, dQ (finished here).
  for (var e = lid; e < C * C; e += WG) {
    let r = e / C;
    let j = e % C;
    var acc = 0.0;
    if (r < len && j < len) {
      let rv = row_base(bh, t0 + j, V);
      for (var v = 0u; v < V; v++) { acc = fma(wsdv[(cb + r) * V + v], ld_v(rv + v), acc); }
      for (var k = 0u; k < K; k++) { acc = fma(wsy[yw + r * K + k], wsk[(cb + j) * K + k], acc); }
    }
    wsx[x2 + e] = acc;
  }
  for (var e = lid; e < C * K; e += WG) {
    let i = e / K;
    let k = e % K;
    var acc = 0.0;
    if (i < len) {
      for (var a = i; a < len; a++) { acc = fma(wsx[x1 + a * C + i], wsq[(cb + a) * K + k], acc); }
      for (var v = 0u; v < V; v++) { acc = fma(wsu[(cb + i) * V + v], wsds[sb + k * V + v], acc); }
      var tw = 0.0;
      for (var r = i; r < len; r++) { tw = fma(nt(cc, r, i), wsy[yw + r * K + k], tw); }
      acc = fma(ld_beta(beta_at(bh, t0 + i)), tw, acc);
    }
    wsy[yz + e] = acc;
  }
  for (var i = lid; i < len; i += WG) {
    let ro = row_base(bh, t0 + i, V);
    for (var k = 0u; k < K; k++) {
      var acc = 0.0;
      for (var v = 0u; v < V; v++) { acc = fma(ld_do(ro + v), wss[sb + k * V + v], acc); }
      acc *= p.scale;
      for (var j = 0u; j <= i; j++) { acc = fma(wsx[x1 + i * C + j], wsk[(cb + j) * K + k], acc); }
      wsy[yq + i * K + k] = acc;
    }
    l2n_back_q(bh, t0 + i, yq + i * K, (cb + i) * K);
  }
  storageBarrier();
  workgroupBarrier();

  // dT Tᵀ, and dV = Tᵀ dV_new.
  for (var e = lid; e < C * C; e += WG) {
    let a = e / C;
    let j = e % C;
    var acc = 0.0;
    if (a < len && j < len) {
      for (var b = 0u; b <= j; b++) {
        acc = fma(wsx[x2 + a * C + b], nt(cc, j, b) * ld_beta(beta_at(bh, t0 + b)), acc);
      }
    }
    wsx[x3 + e] = acc;
  }
  let VP = (V + 1u) / 2u;
  for (var e = lid; e < len * VP; e += WG) {
    let j = e / VP;
    let v0 = 2u * (e % VP);
    let v1 = min(v0 + 1u, V - 1u);
    var a0 = 0.0;
    var a1 = 0.0;
    for (var r = j; r < len; r++) {
      let t = nt(cc, r, j);
      a0 = fma(t, wsdv[(cb + r) * V + v0], a0);
      a1 = fma(t, wsdv[(cb + r) * V + v1], a1);
    }
    let b = ld_beta(beta_at(bh, t0 + j));
    st2_dv(row_base(bh, t0 + j, V) + v0, a0 * b, a1 * b, v0 + 1u < V);
  }
  storageBarrier();
  workgroupBarrier();

  // dA (replaces dP).
  for (var e = lid; e < C * C; e += WG) {
    let i = e / C;
    let j = e % C;
    var acc = 0.0;
    if (j < i && i < len) {
      for (var a = i; a < len; a++) { acc = fma(nt(cc, a, i), wsx[x3 + a * C + j], acc); }
    }
    wsx[x1 + e] = -acc;
  }
  storageBarrier();
  workgroupBarrier();

  // dβ and the rest of dK, per row.
  for (var i = lid; i < len; i += WG) {
    var db = 0.0;
    for (var r = i; r < len; r++) { db = fma(nt(cc, r, i), wsx[x2 + r * C + i], db); }
    for (var j = 0u; j < i; j++) {
      var kk = 0.0;
      for (var k = 0u; k < K; k++) { kk = fma(wsk[(cb + i) * K + k], wsk[(cb + j) * K + k], kk); }
      db = fma(wsx[x1 + i * C + j], kk, db);
    }
    dbeta[beta_at(bh, t0 + i)] = db;
    let bi = ld_beta(beta_at(bh, t0 + i));
    for (var k = 0u; k < K; k++) {
      var acc = 0.0;
      for (var j = 0u; j < i; j++) { acc = fma(wsx[x1 + i * C + j], wsk[(cb + j) * K + k], acc); }
      acc *= bi;
      for (var a = i + 1u; a < len; a++) {
        acc = fma(ld_beta(beta_at(bh, t0 + a)) * wsx[x1 + a * C + i], wsk[(cb + a) * K + k], acc);
      }
      wsy[yz + i * K + k] += acc;
    }
    l2n_back_k(bh, t0 + i, yz + i * K, (cb + i) * K);
  }
}
