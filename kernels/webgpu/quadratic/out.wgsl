// quadratic pass 3: o_i = Σ_{j≤i} P_ij v_j (softmax), or (φ(q_i)·h0 + Σ_{j≤i} A_ij v_j) / den_i
// (la); one invocation per (row, pair of adjacent columns), which stores the pair.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let VP = (V + 1u) / 2u;
  let e = gid.x;
  let bh = gid.y;
  if (e >= p.T * VP) { return; }
  let i = e / VP;
  let v0 = 2u * (e % VP);
  let v1 = min(v0 + 1u, V - 1u);
  let row = (bh * p.T + i) * p.T;
  var a0 = 0.0;
  var a1 = 0.0;
  for (var j = 0u; j <= i; j++) {
    let w = wsa[row + j];
    let r = row_base(bh, j, V);
    a0 = fma(w, ld_v(r + v0), a0);
    a1 = fma(w, ld_v(r + v1), a1);
  }
  if (VARIANT == 0u) {
    if (p.has_h0 != 0u) {
      let rq = row_base(bh, i, K);
      for (var k = 0u; k < K; k++) {
        let x = phi(ld_q(rq + k));
        a0 = fma(x, h0[(bh * K + k) * V + v0], a0);
        a1 = fma(x, h0[(bh * K + k) * V + v1], a1);
      }
    }
    let inv = 1.0 / wsd[bh * p.T + i];
    a0 *= inv;
    a1 *= inv;
  }
  st2_o(row_base(bh, i, V) + v0, a0, a1, v0 + 1u < V);
}
