// Shared by gla's per-chunk backward passes: G, the within-chunk inclusive cumsum of g, into
// sG [C][K] (rows past the sequence end repeat the last G: their gates load as 0).
fn load_cumsum(bh: u32, t0: u32, len: u32, lid: u32) {
  for (var e = lid; e < C * K; e += WG) {
    let t = e / K;
    var x = 0.0;
    if (t < len) { x = ld_g(row_base(bh, t0 + t, K) + e % K); }
    sG[e] = x;
  }
  workgroupBarrier();
  for (var l = lid; l < K; l += WG) {
    var run = 0.0;
    for (var t = 0u; t < C; t++) {
      run += sG[t * K + l];
      sG[t * K + l] = run;
    }
  }
  workgroupBarrier();
}
