// deltanet backward pass 1: per (head bh, slice of VS columns) the chunks in reverse, the
// slice of dS (the gradient of the state after the chunk, 0 after the last) in workgroup
// memory (docs/ops.md, chunked backward):
//   wsds ← dS;  dV_new = scale Pᵀ dO + K dS (→ wsdv);  dS ← dS + scale Qᵀ dO − Wᵀ dV_new
// The total is dh0. Columns of dS are independent under this update, as in chunk_rec.wgsl.
override WG: u32 = 256;  // 4 · max(C, K)
const VS: u32 = 16u;

var<workgroup> sD: array<f32, K * VS>;
var<workgroup> sX: array<f32, C * VS>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let v0 = wid.x * VS;
  let bh = wid.y;
  let r = lid / 4u;
  let c0 = 4u * (lid % 4u);
  for (var e = lid; e < K * VS; e += WG) { sD[e] = 0.0; }
  workgroupBarrier();
  for (var n = p.NC; n > 0u; n--) {
    let t0 = (n - 1u) * C;
    let len = min(C, p.T - t0);
    let cb = (bh * p.NC + n - 1u) * C;
    if (r < K) {
      for (var j = 0u; j < 4u; j++) {
        let col = v0 + c0 + j;
        if (col < V) { wsds[((bh * p.NC + n - 1u) * K + r) * V + col] = sD[r * VS + c0 + j]; }
      }
    }
    if (r < C) {
      var a = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
      if (r < len) {
        for (var i = r; i < len; i++) {
          let pir = p.scale * wsp[(cb + i) * C + r];
          let ro = row_base(bh, t0 + i, V);
          for (var j = 0u; j < 4u; j++) {
            a[j] = fma(pir, ld_do(ro + min(v0 + c0 + j, V - 1u)), a[j]);
          }
        }
        for (var k = 0u; k < K; k++) {
          let x = wsk[(cb + r) * K + k];
          for (var j = 0u; j < 4u; j++) { a[j] = fma(x, sD[k * VS + c0 + j], a[j]); }
        }
      }
      for (var j = 0u; j < 4u; j++) {
        sX[r * VS + c0 + j] = a[j];
        let col = v0 + c0 + j;
        if (col < V) { wsdv[(cb + r) * V + col] = a[j]; }
      }
    }
    workgroupBarrier();
    if (r < K) {
      for (var i = 0u; i < len; i++) {
        let qs = p.scale * wsq[(cb + i) * K + r];
        let w = wsw[(cb + i) * K + r];
        let ro = row_base(bh, t0 + i, V);
        for (var j = 0u; j < 4u; j++) {
          let d_o = ld_do(ro + min(v0 + c0 + j, V - 1u));
          sD[r * VS + c0 + j] += qs * d_o - w * sX[i * VS + c0 + j];
        }
      }
    }
    workgroupBarrier();
  }
  if (p.has_h0 != 0u && r < K) {
    for (var j = 0u; j < 4u; j++) {
      let col = v0 + c0 + j;
      if (col < V) { dh0[bh * K * V + r * V + col] = sD[r * VS + c0 + j]; }
    }
  }
}
