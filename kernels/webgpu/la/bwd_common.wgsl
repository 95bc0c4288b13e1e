// Shared by la's backward passes: φ(q), φ(k) of a chunk into workgroup memory (zero rows past
// the sequence end) and P = tril(Φq Φkᵀ) (diagonal included). Needs sQ, sK, sP and WG.
fn load_phi(bh: u32, t0: u32, len: u32, lid: u32) {
  for (var e = lid; e < C * K; e += WG) {
    let t = e / K;
    var xq = 0.0;
    var xk = 0.0;
    if (t < len) {
      let r = row_base(bh, t0 + t, K) + e % K;
      xq = phi(ld_q(r));
      xk = phi(ld_k(r));
    }
    sQ[e] = xq;
    sK[e] = xk;
  }
}

fn build_p(len: u32, lid: u32) {
  for (var e = lid; e < C * C; e += WG) {
    let i = e / C;
    let j = e % C;
    var acc = 0.0;
    if (j <= i && i < len) {
      for (var k = 0u; k < K; k++) { acc = fma(sQ[i * K + k], sK[j * K + k], acc); }
    }
    sP[e] = acc;
  }
}

fn dphi(x: f32) -> f32 {
  return select(exp(x), 1.0, x > 0.0);
}
