// deltanet pass 2: per (head bh, slice of VS state columns) the chunks in order, the state
// slice S [K][VS] in workgroup memory (from h0):
//   V_new = U − W S;  O = scale · (Q S + P V_new);  S ← S + Kᵀ V_new
// with Q, K (normalized), W, U, P from pass 1; V_new replaces U in wsu, and for the backward
// (flags bit 2) S before each chunk goes to wss [B·H, NC, K, V]. Columns are independent, so
// slices run in parallel. Invocation (r, quad) owns row r of V_new/O (and row r of S in the
// update) at columns 4·quad … 4·quad + 3 of the slice, held in named vec4s: the first version of
// this pass kept them in array<f32, 4> indexed in loops, which NVIDIA's Vulkan compiler left in
// local memory (1,061 → 739 ms for fwd+bwd at 256K on an H100 with this one, session 6; the first
// was deleted after). The slices are vec4 rows in workgroup memory, so a row's four columns are one
// load; the own state row stays in a register, so the chunk-start and final writes read no
// workgroup memory. Columns past V are zero: no output reads them.
override WG: u32 = 256;  // 4 · max(C, K)
const VS: u32 = 16u;
const VQ: u32 = VS / 4u;  // vec4s per slice row

var<workgroup> sS: array<vec4f, K * VQ>;
var<workgroup> sV: array<vec4f, C * VQ>;

fn h0_at(at: u32, col: u32) -> f32 {
  if (p.has_h0 == 0u || col >= V) { return 0.0; }
  return h0[at + col];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let r = lid / 4u;
  let qd = lid % 4u;
  let col = wid.x * VS + 4u * qd;
  var st = vec4f(0.0);
  if (r < K) {
    let at = bh * K * V + r * V;
    st = vec4f(h0_at(at, col), h0_at(at, col + 1u), h0_at(at, col + 2u), h0_at(at, col + 3u));
    sS[r * VQ + qd] = st;
  }
  workgroupBarrier();
  for (var n = 0u; n < p.NC; n++) {
    let t0 = n * C;
    let len = min(C, p.T - t0);
    let cb = (bh * p.NC + n) * C;
    if ((p.flags & 4u) != 0u && r < K && col < V) {
      st4_wss(((bh * p.NC + n) * K + r) * V + col, V - col, st);
    }
    var qs = vec4f(0.0);
    if (r < C) {
      var vn = vec4f(0.0);
      if (col < V) { vn = ld4_wsu((cb + r) * V + col, V - col); }
      for (var k = 0u; k < K; k++) {
        let s = sS[k * VQ + qd];
        vn = fma(vec4f(-wsw[(cb + r) * K + k]), s, vn);
        qs = fma(vec4f(wsq[(cb + r) * K + k]), s, qs);
      }
      sV[r * VQ + qd] = vn;
      if (col < V) { st4_wsu((cb + r) * V + col, V - col, vn); }
    }
    workgroupBarrier();
    if (r < len) {
      for (var j = 0u; j <= r; j++) {
        qs = fma(vec4f(wsp[(cb + r) * C + j]), sV[j * VQ + qd], qs);
      }
      let o = row_base(bh, t0 + r, V) + col;
      let x = qs * p.scale;
      if (col < V) { st2_o(o, x.x, x.y, col + 1u < V); }
      if (col + 2u < V) { st2_o(o + 2u, x.z, x.w, col + 3u < V); }
    }
    if (r < K) {
      for (var t = 0u; t < len; t++) {
        st = fma(vec4f(wsk[(cb + t) * K + r]), sV[t * VQ + qd], st);
      }
      sS[r * VQ + qd] = st;
    }
    workgroupBarrier();
  }
  if (r < K && col < V) { st4_final_state(bh * K * V + r * V + col, V - col, st); }
}
