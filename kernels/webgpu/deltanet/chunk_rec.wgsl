// deltanet pass 2: per (head bh, slice of VS state columns) the chunks in order, the state
// slice S [K][VS] in workgroup memory (from h0):
//   V_new = U − W S;  O = scale · (Q S + P V_new);  S ← S + Kᵀ V_new
// with Q, K (normalized), W, U, P from pass 1; V_new replaces U in wsu, and for the backward
// (flags bit 2) S before each chunk goes to wss [B·H, NC, K, V]. Columns are independent, so
// slices run in parallel. Invocation (r, quad) owns row r of V_new/O (and row r of S in
// the update) at columns 4·quad … 4·quad + 3 of the slice.
override WG: u32 = 256;  // 4 · max(C, K)
const VS: u32 = 16u;

var<workgroup> sS: array<f32, K * VS>;
var<workgroup> sV: array<f32, C * VS>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let v0 = wid.x * VS;
  let bh = wid.y;
  let r = lid / 4u;
  let c0 = 4u * (lid % 4u);
  for (var e = lid; e < K * VS; e += WG) {
    let col = v0 + e % VS;
    var x = 0.0;
    if (p.has_h0 != 0u && col < V) { x = h0[bh * K * V + (e / VS) * V + col]; }
    sS[e] = x;
  }
  workgroupBarrier();
  for (var n = 0u; n < p.NC; n++) {
    let t0 = n * C;
    let len = min(C, p.T - t0);
    let cb = (bh * p.NC + n) * C;
    if ((p.flags & 4u) != 0u && r < K) {
      for (var j = 0u; j < 4u; j++) {
        let col = v0 + c0 + j;
        if (col < V) { wss[((bh * p.NC + n) * K + r) * V + col] = sS[r * VS + c0 + j]; }
      }
    }
    var qs = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    if (r < C) {
      var vn: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) {
        let col = min(v0 + c0 + j, V - 1u);
        vn[j] = wsu[(cb + r) * V + col];
      }
      for (var k = 0u; k < K; k++) {
        let w = wsw[(cb + r) * K + k];
        let q = wsq[(cb + r) * K + k];
        for (var j = 0u; j < 4u; j++) {
          let s = sS[k * VS + c0 + j];
          vn[j] = fma(-w, s, vn[j]);
          qs[j] = fma(q, s, qs[j]);
        }
      }
      for (var j = 0u; j < 4u; j++) {
        sV[r * VS + c0 + j] = vn[j];
        let col = v0 + c0 + j;
        if (col < V) { wsu[(cb + r) * V + col] = vn[j]; }
      }
    }
    workgroupBarrier();
    if (r < len) {
      for (var j = 0u; j <= r; j++) {
        let pj = wsp[(cb + r) * C + j];
        for (var jj = 0u; jj < 4u; jj++) { qs[jj] = fma(pj, sV[j * VS + c0 + jj], qs[jj]); }
      }
      let o = row_base(bh, t0 + r, V) + v0 + c0;
      for (var jp = 0u; jp < 4u; jp += 2u) {
        let col = v0 + c0 + jp;
        if (col < V) { st2_o(o + jp, qs[jp] * p.scale, qs[jp + 1u] * p.scale, col + 1u < V); }
      }
    }
    if (r < K) {
      for (var t = 0u; t < len; t++) {
        let kt = wsk[(cb + t) * K + r];
        for (var j = 0u; j < 4u; j++) {
          sS[r * VS + c0 + j] = fma(kt, sV[t * VS + c0 + j], sS[r * VS + c0 + j]);
        }
      }
    }
    workgroupBarrier();
  }
  if (r < K) {
    for (var j = 0u; j < 4u; j++) {
      let col = v0 + c0 + j;
      if (col < V) { final_state[bh * K * V + r * V + col] = sS[r * VS + c0 + j]; }
    }
  }
}
