// gla backward pass 1: per (chunk n, head bh) the chunk's own term of the state gradient
// before it, scale · (Q ⊙ exp(G))ᵀ dO [K×V], into wsd [B·H, NC, K·V + K] (the last K unused).
override WG: u32 = 256;

var<workgroup> sG: array<f32, C * K>;  // G, then q ⊙ exp(G) [C][K]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  load_cumsum(bh, t0, len, lid);
  for (var e = lid; e < len * K; e += WG) {
    sG[e] = ld_q(row_base(bh, t0 + e / K, K) + e % K) * exp(sG[e]);
  }
  workgroupBarrier();
  let db = (bh * p.NC + n) * (K * V + K);
  for (var e = lid; e < K * V; e += WG) {
    let k = e / V;
    let v = e % V;
    var acc = 0.0;
    for (var i = 0u; i < len; i++) {
      acc = fma(sG[i * K + k], ld_do(row_base(bh, t0 + i, V) + v), acc);
    }
    wsd[db + e] = p.scale * acc;
  }
}
