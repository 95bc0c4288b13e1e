// gla backward pass 3: per (chunk n, head bh), from S_prev (ws), dS after the chunk (wsd),
// the state after it (the next chunk's S_prev, or final_state), with A_ij = Σ_l q_il k_jl
// exp(G_il − G_jl) and dA = scale · tril(dO Vᵀ) (docs/ops.md):
//   dV = scale Aᵀ dO + (K ⊙ exp(Γ − G)) dS
//   dq_il = scale (dO Sᵀ)_il exp(G_il) + Σ_{j≤i} dA_ij k_jl exp(G_il − G_jl)
//   dk_jl = Σ_{i≥j} dA_ij q_il exp(G_il − G_jl) + (V dSᵀ)_jl exp(Γ_l − G_jl)
//   dG = Q ⊙ dQ − K ⊙ dK, + rowsum(S_after ⊙ dS) on the last row; dg = reverse cumsum of dG
// dG goes through wsg [B·H, NC, C, K] for the column-wise reverse cumsum.
override WG: u32 = 256;

var<workgroup> sG: array<f32, C * K>;  // G [C][K]
var<workgroup> sP: array<f32, C * C>;  // A, then dA [C][C]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let KVZ = K * V + K;
  let st = (bh * p.NC + n) * KVZ;
  let gb = (bh * p.NC + n) * C * K;
  load_cumsum(bh, t0, len, lid);
  for (var e = lid; e < C * C; e += WG) {
    let i = e / C;
    let j = e % C;
    var acc = 0.0;
    if (j <= i && i < len) {
      let ri = row_base(bh, t0 + i, K);
      let rj = row_base(bh, t0 + j, K);
      for (var l = 0u; l < K; l++) {
        acc += ld_q(ri + l) * ld_k(rj + l) * exp(sG[i * K + l] - sG[j * K + l]);
      }
    }
    sP[e] = acc;
  }
  workgroupBarrier();
  let last = (len - 1u) * K;
  let VP = (V + 1u) / 2u;
  for (var e = lid; e < len * VP; e += WG) {
    let j = e / VP;
    let v0 = 2u * (e % VP);
    let v1 = min(v0 + 1u, V - 1u);
    var a0 = 0.0;
    var a1 = 0.0;
    for (var i = j; i < len; i++) {
      let a = sP[i * C + j];
      let r = row_base(bh, t0 + i, V);
      a0 = fma(a, ld_do(r + v0), a0);
      a1 = fma(a, ld_do(r + v1), a1);
    }
    a0 *= p.scale;
    a1 *= p.scale;
    let rk = row_base(bh, t0 + j, K);
    for (var l = 0u; l < K; l++) {
      let x = ld_k(rk + l) * exp(sG[last + l] - sG[j * K + l]);
      a0 = fma(x, wsd[st + l * V + v0], a0);
      a1 = fma(x, wsd[st + l * V + v1], a1);
    }
    st2_dv(row_base(bh, t0 + j, V) + v0, a0, a1, v0 + 1u < V);
  }
  workgroupBarrier();
  for (var e = lid; e < C * C; e += WG) {
    let i = e / C;
    let j = e % C;
    var acc = 0.0;
    if (j <= i && i < len) {
      let ri = row_base(bh, t0 + i, V);
      let rj = row_base(bh, t0 + j, V);
      for (var v = 0u; v < V; v++) { acc = fma(ld_do(ri + v), ld_v(rj + v), acc); }
    }
    sP[e] = p.scale * acc;
  }
  workgroupBarrier();
  let KP = (K + 1u) / 2u;
  for (var e = lid; e < len * KP; e += WG) {
    let i = e / KP;
    let l0 = 2u * (e % KP);
    var dqk = array<vec2f, 2>(vec2f(0.0), vec2f(0.0));  // (dq, dk) at l0, l0 + 1
    for (var h = 0u; h < 2u; h++) {
      let l = l0 + h;
      if (l >= K) { break; }
      let gi = sG[i * K + l];
      let rv = row_base(bh, t0 + i, V);
      var dq = 0.0;
      var dk = 0.0;
      for (var v = 0u; v < V; v++) {
        dq = fma(ld_do(rv + v), ws[st + l * V + v], dq);
        dk = fma(ld_v(rv + v), wsd[st + l * V + v], dk);
      }
      dq *= p.scale * exp(gi);
      dk *= exp(sG[last + l] - gi);
      for (var j = 0u; j <= i; j++) {
        dq += sP[i * C + j] * ld_k(row_base(bh, t0 + j, K) + l) * exp(gi - sG[j * K + l]);
      }
      for (var j = i; j < len; j++) {
        dk += sP[j * C + i] * ld_q(row_base(bh, t0 + j, K) + l) * exp(sG[j * K + l] - gi);
      }
      let rk = row_base(bh, t0 + i, K);
      var dg = ld_q(rk + l) * dq - ld_k(rk + l) * dk;
      if (i + 1u == len) {
        // dΓ: the state after this chunk is the next chunk's starting state, or final_state.
        var acc = 0.0;
        for (var v = 0u; v < V; v++) {
          var s_after = 0.0;
          if (n + 1u < p.NC) {
            s_after = ws[st + KVZ + l * V + v];
          } else {
            s_after = final_state[bh * K * V + l * V + v];
          }
          acc = fma(s_after, wsd[st + l * V + v], acc);
        }
        dg += acc;
      }
      wsg[gb + i * K + l] = dg;
      dqk[h] = vec2f(dq, dk);
    }
    let rk = row_base(bh, t0 + i, K);
    st2_dq(rk + l0, dqk[0].x, dqk[1].x, l0 + 1u < K);
    st2_dk(rk + l0, dqk[0].y, dqk[1].y, l0 + 1u < K);
  }
  storageBarrier();
  workgroupBarrier();
  for (var l0 = 2u * lid; l0 < K; l0 += 2u * WG) {
    let l1 = min(l0 + 1u, K - 1u);
    var r0 = 0.0;
    var r1 = 0.0;
    for (var i = len; i > 0u; i--) {
      r0 += wsg[gb + (i - 1u) * K + l0];
      r1 += wsg[gb + (i - 1u) * K + l1];
      st2_dg(row_base(bh, t0 + i - 1u, K) + l0, r0, r1, l0 + 1u < K);
    }
  }
}
