// deltanet backward pass 1: per (head bh, slice of VS columns) the chunks in reverse, the slice
// of dS (the gradient of the state after the chunk, 0 after the last) in workgroup memory
// (docs/ops.md, chunked backward):
//   wsds ← dS;  dV_new = scale Pᵀ dO + K dS (→ wsdv);  dS ← dS + scale Qᵀ dO − Wᵀ dV_new
// The total is dh0. Columns of dS are independent under this update, as in chunk_rec.wgsl, and
// each invocation's four columns of dV_new and its own row of dS are named vec4s (the register
// treatment of chunk_rec.wgsl). The slices are vec4 rows in workgroup memory; the own dS row stays
// in a register, so the chunk-start and dh0 writes read no workgroup memory.
override WG: u32 = 256;  // 4 · max(C, K)
const VS: u32 = 16u;
const VQ: u32 = VS / 4u;  // vec4s per slice row

var<workgroup> sD: array<vec4f, K * VQ>;
var<workgroup> sX: array<vec4f, C * VQ>;

// dO at columns col … col + 3 of the row at `ro`, clamped to V − 1 as in bwd_rec.wgsl.
fn ld4_do(ro: u32, col: u32) -> vec4f {
  let m = V - 1u;
  return vec4f(
    ld_do(ro + min(col, m)),
    ld_do(ro + min(col + 1u, m)),
    ld_do(ro + min(col + 2u, m)),
    ld_do(ro + min(col + 3u, m)),
  );
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let r = lid / 4u;
  let qd = lid % 4u;
  let col = wid.x * VS + 4u * qd;
  var d = vec4f(0.0);
  if (r < K) { sD[r * VQ + qd] = d; }
  workgroupBarrier();
  for (var n = p.NC; n > 0u; n--) {
    let t0 = (n - 1u) * C;
    let len = min(C, p.T - t0);
    let cb = (bh * p.NC + n - 1u) * C;
    if (r < K && col < V) { st4_wsds(((bh * p.NC + n - 1u) * K + r) * V + col, V - col, d); }
    if (r < C) {
      var a = vec4f(0.0);
      if (r < len) {
        for (var i = r; i < len; i++) {
          let pir = p.scale * wsp[(cb + i) * C + r];
          a = fma(vec4f(pir), ld4_do(row_base(bh, t0 + i, V), col), a);
        }
        for (var k = 0u; k < K; k++) {
          a = fma(vec4f(wsk[(cb + r) * K + k]), sD[k * VQ + qd], a);
        }
      }
      sX[r * VQ + qd] = a;
      if (col < V) { st4_wsdv((cb + r) * V + col, V - col, a); }
    }
    workgroupBarrier();
    if (r < K) {
      for (var i = 0u; i < len; i++) {
        let qs = p.scale * wsq[(cb + i) * K + r];
        let w = wsw[(cb + i) * K + r];
        d += qs * ld4_do(row_base(bh, t0 + i, V), col) - w * sX[i * VQ + qd];
      }
      sD[r * VQ + qd] = d;
    }
    workgroupBarrier();
  }
  if (p.has_h0 != 0u && r < K && col < V) { st4_dh0(bh * K * V + r * V + col, V - col, d); }
}
