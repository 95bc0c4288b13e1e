// la backward pass 1 (after the forward, whose ws holds each chunk's starting S, z): per
// (chunk n, head bh), with P = tril(Φq Φkᵀ), N = Φq S + P V, Dn = Φq z + P·1 + 1e-6:
//   ∂N = dO / Dn, ∂D = −(dO · N) / Dn² when normalizing, else ∂N = scale·dO, ∂D = 0,
// stored per row in wsn [B·H, NC, C, V + 1] (∂N then ∂D); and the chunk's contributions to
// the state gradients, Φqᵀ ∂N [K×V] and Φqᵀ ∂D [K], into wsd [B·H, NC, K·V + K].
override WG: u32 = 256;
// Normalization comes from the uniform (flags bit 1), not an override: an override bool in
// this shader makes Naga 29 panic (arena/handlevec.rs) at pipeline creation.

var<workgroup> sQ: array<f32, C * K>;  // φ(q) rows [C][K]
var<workgroup> sK: array<f32, C * K>;  // φ(k) rows [C][K]
var<workgroup> sP: array<f32, C * C>;  // P [C][C]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let KVZ = K * V + K;
  let st = (bh * p.NC + n) * KVZ;        // S, z before this chunk in ws
  let nb = (bh * p.NC + n) * C * (V + 1u);  // this chunk's rows in wsn
  let NORMALIZE = (p.flags & 2u) != 0u;
  load_phi(bh, t0, len, lid);
  workgroupBarrier();
  build_p(len, lid);
  workgroupBarrier();
  for (var i = lid; i < C; i += WG) {
    if (i >= len) {
      for (var v = 0u; v < V + 1u; v++) { wsn[nb + i * (V + 1u) + v] = 0.0; }
      continue;
    }
    var den = 1e-6;
    if (NORMALIZE) {
      for (var k = 0u; k < K; k++) { den = fma(sQ[i * K + k], ws[st + K * V + k], den); }
      for (var j = 0u; j <= i; j++) { den += sP[i * C + j]; }
    }
    var dd = 0.0;
    let r = row_base(bh, t0 + i, V);
    for (var v = 0u; v < V; v++) {
      let d_o = ld_do(r + v);
      var nv = 0.0;
      if (NORMALIZE) {
        for (var k = 0u; k < K; k++) { nv = fma(sQ[i * K + k], ws[st + k * V + v], nv); }
        for (var j = 0u; j <= i; j++) { nv = fma(sP[i * C + j], ld_v(row_base(bh, t0 + j, V) + v), nv); }
        dd = fma(d_o, nv, dd);
      }
      var g = p.scale * d_o;
      if (NORMALIZE) { g = d_o / den; }
      wsn[nb + i * (V + 1u) + v] = g;
    }
    var gd = 0.0;
    if (NORMALIZE) { gd = -dd / (den * den); }
    wsn[nb + i * (V + 1u) + V] = gd;
  }
  storageBarrier();
  workgroupBarrier();
  let db = (bh * p.NC + n) * KVZ;
  for (var e = lid; e < KVZ; e += WG) {
    // e < K·V: (k, v) of Φqᵀ ∂N; else k of Φqᵀ ∂D (column V of wsn).
    var k = e - K * V;
    var v = V;
    if (e < K * V) {
      k = e / V;
      v = e % V;
    }
    var acc = 0.0;
    for (var i = 0u; i < len; i++) { acc = fma(sQ[i * K + k], wsn[nb + i * (V + 1u) + v], acc); }
    wsd[db + e] = acc;
  }
}
