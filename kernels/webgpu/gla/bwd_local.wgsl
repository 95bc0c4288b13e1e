// gla backward pass 1: per (chunk n, head bh) G, the within-chunk inclusive cumsum of g, into
// wsg [B·H, NC, C, K] (rows past the sequence end repeat the last; bwd_grad reads G there, then
// replaces it by dG), and the chunk's own term of the state gradient before it,
// scale · (Q ⊙ exp(G))ᵀ dO [K×V], into wsd [B·H, NC, K·V + K] (the last K unused).
// Invocations own 4×4 tiles (r, c) of the K×V term, tokens streamed through sX D at a time.

var<workgroup> sX: array<vec4f, NX>;  // q ⊙ exp(G) [D][K4], dO [D][V4]

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let gb = (bh * p.NC + n) * C * K;
  for (var l = lid; l < K; l += NT) {
    var run = 0.0;
    for (var t = 0u; t < C; t++) {
      if (t < len) { run += ld_g(row_base(bh, t0 + t, K) + l); }
      wsg[gb + t * K + l] = run;
    }
  }
  storageBarrier();
  workgroupBarrier();
  let r = lid / V4;
  let c = lid % V4;
  let isS = lid < K4 * V4;
  let oO = D * K4;
  var acc = mat4x4f();
  for (var s0 = 0u; s0 < len; s0 += D) {
    for (var e = lid; e < D * K4; e += NT) {
      let t = s0 + e / K4;
      var x = vec4f(0.0);
      if (t < len) { x = ld4_q(row_base(bh, t0 + t, K), e % K4) * exp(ld4_g(gb, t, e % K4)); }
      sX[e] = x;
    }
    for (var e = lid; e < D * V4; e += NT) {
      let t = s0 + e / V4;
      var x = vec4f(0.0);
      if (t < len) { x = ld4_do(row_base(bh, t0 + t, V), e % V4); }
      sX[oO + e] = x;
    }
    workgroupBarrier();
    if (isS) {
      let m = min(D, len - s0);
      for (var i = 0u; i < m; i++) { acc = outer(acc, sX[i * K4 + r], sX[oO + i * V4 + c]); }
    }
    workgroupBarrier();
  }
  if (isS) {
    let db = (bh * p.NC + n) * (K * V + K);
    put_ds(db, 4u * r, c, p.scale * acc[0]);
    put_ds(db, 4u * r + 1u, c, p.scale * acc[1]);
    put_ds(db, 4u * r + 2u, c, p.scale * acc[2]);
    put_ds(db, 4u * r + 3u, c, p.scale * acc[3]);
  }
}

fn put_ds(db: u32, k: u32, c: u32, x: vec4f) {
  if (k >= K) { return; }
  for (var j = 0u; j < 4u; j++) {
    if (4u * c + j < V) { wsd[db + k * V + 4u * c + j] = x[j]; }
  }
}
