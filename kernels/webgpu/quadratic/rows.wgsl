// quadratic pass 2: per query row i, one invocation. softmax: P_ij = exp(S_ij − max) / Σ in
// place over j ≤ i; la: the denominator φ(q_i)·z0 + Σ_j A_ij + 1e-6 into wsd [B·H][T] (1 when
// not normalizing: the output is then scale·numerator).
override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let bh = gid.y;
  if (i >= p.T) { return; }
  let row = (bh * p.T + i) * p.T;
  if (VARIANT == 1u) {
    var m = -3.0e38;
    for (var j = 0u; j <= i; j++) { m = max(m, wsa[row + j]); }
    var l = 0.0;
    for (var j = 0u; j <= i; j++) {
      let e = exp(wsa[row + j] - m);
      wsa[row + j] = e;
      l += e;
    }
    let inv = 1.0 / l;
    for (var j = 0u; j <= i; j++) { wsa[row + j] *= inv; }
    return;
  }
  var den = 1.0 / p.scale;
  if ((p.flags & 2u) != 0u) {
    den = 1e-6;
    for (var j = 0u; j <= i; j++) { den += wsa[row + j]; }
    if (p.has_z0 != 0u) {
      let rq = row_base(bh, i, K);
      for (var k = 0u; k < K; k++) { den = fma(phi(ld_q(rq + k)), z0[bh * K + k], den); }
    }
  }
  wsd[bh * p.T + i] = den;
}
