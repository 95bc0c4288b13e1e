// Token-by-token forward of la (VARIANT 0), gla (1) and deltanet (2), the baseline for the
// chunked kernels (docs/ops.md's recurrences). Invocation c of a workgroup owns state columns
// v = 2c, 2c + 1 of one head in registers (K and the columns are WGSL consts the host writes
// in front), so every column update and every o_v = Σ_k q_k S_kv stays within one
// invocation, and it stores o's pair of adjacent elements (a whole bf16 word). Each
// invocation re-derives the per-token scalars (φ, norms, z) it needs from q_t, k_t.
override WG: u32 = 32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let v0 = 2u * (wid.x * WG + lid);
  if (v0 >= V) { return; }
  let v1 = min(v0 + 1u, V - 1u);
  var s0: array<f32, K>;
  var s1: array<f32, K>;
  var z: array<f32, K>;
  var kt: array<f32, K>;
  for (var k = 0u; k < K; k++) {
    if (p.has_h0 != 0u) {
      s0[k] = h0[bh * K * V + k * V + v0];
      s1[k] = h0[bh * K * V + k * V + v1];
    } else {
      s0[k] = 0.0;
      s1[k] = 0.0;
    }
    z[k] = 0.0;
    if (VARIANT == 0u && p.has_z0 != 0u) { z[k] = z0[bh * K + k]; }
  }
  for (var t = 0u; t < p.T; t++) {
    let rk = row_base(bh, t, K);
    let rv = row_base(bh, t, V);
    let x0 = ld_v(rv + v0);
    let x1 = ld_v(rv + v1);
    var kn = 1.0;
    var qn = 1.0;
    if (VARIANT == 2u && (p.flags & 1u) != 0u) {
      var sk = 0.0;
      var sq = 0.0;
      for (var k = 0u; k < K; k++) {
        let a = ld_k(rk + k);
        let b = ld_q(rk + k);
        sk = fma(a, a, sk);
        sq = fma(b, b, sq);
      }
      kn = inverseSqrt(sk + 1e-6);
      qn = inverseSqrt(sq + 1e-6);
    }
    // deltanet: u = v − Sᵀk with the state before this token.
    var u0 = x0;
    var u1 = x1;
    for (var k = 0u; k < K; k++) {
      var a = ld_k(rk + k);
      if (VARIANT == 0u) { a = phi(a); }
      if (VARIANT == 2u) {
        a *= kn;
        u0 = fma(-s0[k], a, u0);
        u1 = fma(-s1[k], a, u1);
      }
      kt[k] = a;
    }
    var bt = 0.0;
    if (VARIANT == 2u) { bt = ld_beta(beta_at(bh, t)); }
    var o0 = 0.0;
    var o1 = 0.0;
    var den = 1e-6;
    for (var k = 0u; k < K; k++) {
      if (VARIANT == 0u) {
        s0[k] = fma(kt[k], x0, s0[k]);
        s1[k] = fma(kt[k], x1, s1[k]);
        z[k] += kt[k];
      } else if (VARIANT == 1u) {
        let a = exp(ld_g(rk + k));
        s0[k] = fma(a, s0[k], kt[k] * x0);
        s1[k] = fma(a, s1[k], kt[k] * x1);
      } else {
        s0[k] = fma(bt * kt[k], u0, s0[k]);
        s1[k] = fma(bt * kt[k], u1, s1[k]);
      }
      var qk = ld_q(rk + k);
      if (VARIANT == 0u) { qk = phi(qk); }
      if (VARIANT == 2u) { qk *= qn; }
      o0 = fma(qk, s0[k], o0);
      o1 = fma(qk, s1[k], o1);
      den = fma(qk, z[k], den);
    }
    var scale = p.scale;
    if (VARIANT == 0u && (p.flags & 2u) != 0u) { scale = 1.0 / den; }
    st2_o(rv + v0, o0 * scale, o1 * scale, v0 + 1u < V);
  }
  for (var k = 0u; k < K; k++) {
    final_state[bh * K * V + k * V + v0] = s0[k];
    if (v0 + 1u < V) { final_state[bh * K * V + k * V + v1] = s1[k]; }
  }
  if (VARIANT == 0u && (p.flags & 2u) != 0u && v0 == 0u) {
    for (var k = 0u; k < K; k++) { final_z[bh * K + k] = z[k]; }
  }
}
