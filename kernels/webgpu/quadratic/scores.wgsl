// quadratic pass 1: the whole T×T score matrix of one head into wsa [B·H][T][T] (f32), one
// invocation per entry: la A_ij = φ(q_i)·φ(k_j) (VARIANT 0), softmax S_ij = scale·q_i·k_j (1),
// for j ≤ i; entries above the diagonal are written 0 and never read.
@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  let i = gid.y;
  let bh = gid.z;
  if (i >= p.T || j >= p.T) { return; }
  var acc = 0.0;
  if (j <= i) {
    let ri = row_base(bh, i, K);
    let rj = row_base(bh, j, K);
    for (var k = 0u; k < K; k++) {
      var a = ld_q(ri + k);
      var b = ld_k(rj + k);
      if (VARIANT == 0u) {
        a = phi(a);
        b = phi(b);
      }
      acc = fma(a, b, acc);
    }
    if (VARIANT == 1u) { acc *= p.scale; }
  }
  wsa[(bh * p.T + i) * p.T + j] = acc;
}
