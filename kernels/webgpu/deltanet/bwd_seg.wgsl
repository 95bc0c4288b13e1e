// deltanet segmented backward (fwdbwd, deltanet.bwd_seg = 2): per (segment s, head bh, tile of
// 4·RC value columns) bwd_rec.wgsl's reverse walk over the segment's chunks only. Per chunk,
// with dS the gradient of the state after it and Q, K, W, P from chunk_prep.wgsl:
//   dV_new = Pᵀ (scale·dO) + K dS,  dS ← dS + Qᵀ (scale·dO) − Wᵀ dV_new,
// i.e. dS ↦ (I − WᵀK) dS + scale·(Qᵀ − WᵀPᵀ) dO: the transpose of the forward map's linear part
// plus a term of the chunk alone. Rows past the sequence end are zero in every operand (dO is
// loaded as zero there), so they add nothing and their dV_new is 0, as bwd_rec.wgsl writes.
//   RECORD false: from dS = 0, the segment's own term D_s into wsg's B part (free once seg_out
//                 has read the segment start states from it); bwd_seg_scan.wgsl then carries dS
//                 across segments, dS ← M_sᵀ dS + D_s, and leaves dS after segment s there.
//   RECORD true:  from that dS, dS after each chunk into wsds and dV_new into wsdv, what
//                 bwd_rec.wgsl records.
// Layout and register tiles as seg_out.wgsl: invocation (tr, c) owns rows 4tr…4tr+3 of dV_new
// and of dS (named vec4s), the chunk operands are vec4 rows in workgroup memory, and three of the
// arrays are reused between the halves of a chunk (P then Q, K then W, dS then dV_new).
override RECORD: bool = false;
override NA: u32 = 1024;  // vec4s of sA: 4·RT·max(RK, RT)
override NS: u32 = 1024;  // vec4s of sS: 4·max(RK, RT)·RC

var<workgroup> sA: array<vec4f, NA>;            // P rows [4·RT][RT], then Q rows [4·RT][RK]
var<workgroup> sB: array<vec4f, 4u * RT * RK>;  // K rows, then W rows [4·RT][RK]
var<workgroup> sS: array<vec4f, NS>;            // dS tile [4·RK][RC], then dV_new [4·RT][RC]
var<workgroup> sO: array<vec4f, 4u * RT * RC>;  // scale·dO tile [4·RT][RC]

@compute @workgroup_size(WGN)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let s = wid.x;
  let bh = wid.y;
  let KW = K + V;
  let tr = lid / RC;
  let c = lid % RC;
  let col = 4u * (RC * wid.z + c);
  let xact = tr < RT;
  let sact = tr < RK;
  let CP = 4u * RT;
  let r0 = 4u * tr;

  let nseg = (p.NC + CPS - 1u) / CPS;
  let gbase = (bh * nseg + s) * K * KW + K;
  var d0 = vec4f(0.0);
  var d1 = vec4f(0.0);
  var d2 = vec4f(0.0);
  var d3 = vec4f(0.0);
  if (RECORD && sact && col < V) {
    if (r0 < K) { d0 = ld4_wsg(gbase + r0 * KW + col, V - col); }
    if (r0 + 1u < K) { d1 = ld4_wsg(gbase + (r0 + 1u) * KW + col, V - col); }
    if (r0 + 2u < K) { d2 = ld4_wsg(gbase + (r0 + 2u) * KW + col, V - col); }
    if (r0 + 3u < K) { d3 = ld4_wsg(gbase + (r0 + 3u) * KW + col, V - col); }
  }
  let first = s * CPS;
  for (var n = min(first + CPS, p.NC); n > first; n--) {
    let t0 = (n - 1u) * C;
    let len = min(C, p.T - t0);
    let cb = (bh * p.NC + n - 1u) * C;
    if (sact) {
      sS[r0 * RC + c] = d0;
      sS[(r0 + 1u) * RC + c] = d1;
      sS[(r0 + 2u) * RC + c] = d2;
      sS[(r0 + 3u) * RC + c] = d3;
      if (RECORD && col < V) {
        let sb = (bh * p.NC + n - 1u) * K * V + col;
        if (r0 < K) { st4_wsds(sb + r0 * V, V - col, d0); }
        if (r0 + 1u < K) { st4_wsds(sb + (r0 + 1u) * V, V - col, d1); }
        if (r0 + 2u < K) { st4_wsds(sb + (r0 + 2u) * V, V - col, d2); }
        if (r0 + 3u < K) { st4_wsds(sb + (r0 + 3u) * V, V - col, d3); }
      }
    }
    for (var e = lid; e < CP * RT; e += WGN) {
      let t = e / RT;
      let j4 = 4u * (e % RT);
      var y = vec4f(0.0);
      if (t < C) { y = ld4_wsp((cb + t) * C + j4, C - j4); }
      sA[e] = y;
    }
    for (var e = lid; e < CP * RK; e += WGN) {
      let t = e / RK;
      let k4 = 4u * (e % RK);
      var y = vec4f(0.0);
      if (t < C) { y = ld4_wsk((cb + t) * K + k4, K - k4); }
      sB[e] = y;
    }
    for (var e = lid; e < CP * RC; e += WGN) {
      let t = e / RC;
      let oc = 4u * (RC * wid.z + e % RC);
      var y = vec4f(0.0);
      if (t < len && oc < V) { y = p.scale * ld4_do(row_base(bh, t0 + t, V) + oc, V - oc); }
      sO[e] = y;
    }
    workgroupBarrier();

    var v0 = vec4f(0.0);
    var v1 = vec4f(0.0);
    var v2 = vec4f(0.0);
    var v3 = vec4f(0.0);
    if (xact) {
      // Pᵀ: P is lower triangular (zeros stored above the diagonal), so token rows before this
      // block add nothing to its columns.
      for (var i = r0; i < CP; i++) {
        let a = sA[i * RT + tr];
        let b = sO[i * RC + c];
        v0 = fma(vec4f(a.x), b, v0);
        v1 = fma(vec4f(a.y), b, v1);
        v2 = fma(vec4f(a.z), b, v2);
        v3 = fma(vec4f(a.w), b, v3);
      }
      for (var k4 = 0u; k4 < RK; k4++) {
        let at = 4u * k4 * RC + c;
        let b0 = sS[at];
        let b1 = sS[at + RC];
        let b2 = sS[at + 2u * RC];
        let b3 = sS[at + 3u * RC];
        let a = r0 * RK + k4;
        v0 = mac4(v0, sB[a], b0, b1, b2, b3);
        v1 = mac4(v1, sB[a + RK], b0, b1, b2, b3);
        v2 = mac4(v2, sB[a + 2u * RK], b0, b1, b2, b3);
        v3 = mac4(v3, sB[a + 3u * RK], b0, b1, b2, b3);
      }
    }
    workgroupBarrier();
    if (xact) {
      sS[r0 * RC + c] = v0;
      sS[(r0 + 1u) * RC + c] = v1;
      sS[(r0 + 2u) * RC + c] = v2;
      sS[(r0 + 3u) * RC + c] = v3;
      if (RECORD && col < V) {
        if (r0 < C) { st4_wsdv((cb + r0) * V + col, V - col, v0); }
        if (r0 + 1u < C) { st4_wsdv((cb + r0 + 1u) * V + col, V - col, v1); }
        if (r0 + 2u < C) { st4_wsdv((cb + r0 + 2u) * V + col, V - col, v2); }
        if (r0 + 3u < C) { st4_wsdv((cb + r0 + 3u) * V + col, V - col, v3); }
      }
    }
    for (var e = lid; e < CP * RK; e += WGN) {
      let t = e / RK;
      let k4 = 4u * (e % RK);
      var q = vec4f(0.0);
      var w = vec4f(0.0);
      if (t < C) {
        q = ld4_wsq((cb + t) * K + k4, K - k4);
        w = ld4_wsw((cb + t) * K + k4, K - k4);
      }
      sA[e] = q;
      sB[e] = w;
    }
    workgroupBarrier();

    if (sact) {
      for (var t = 0u; t < CP; t++) {
        let q = sA[t * RK + tr];
        let w = -sB[t * RK + tr];
        let o = sO[t * RC + c];
        let x = sS[t * RC + c];
        d0 = fma(vec4f(w.x), x, fma(vec4f(q.x), o, d0));
        d1 = fma(vec4f(w.y), x, fma(vec4f(q.y), o, d1));
        d2 = fma(vec4f(w.z), x, fma(vec4f(q.z), o, d2));
        d3 = fma(vec4f(w.w), x, fma(vec4f(q.w), o, d3));
      }
    }
    workgroupBarrier();
  }
  if (RECORD || !sact || col >= V) { return; }
  if (r0 < K) { st4_wsg(gbase + r0 * KW + col, V - col, d0); }
  if (r0 + 1u < K) { st4_wsg(gbase + (r0 + 1u) * KW + col, V - col, d1); }
  if (r0 + 2u < K) { st4_wsg(gbase + (r0 + 2u) * KW + col, V - col, d2); }
  if (r0 + 3u < K) { st4_wsg(gbase + (r0 + 3u) * KW + col, V - col, d3); }
}

// dO at columns col … col + 3 of the row at `at`, zero past the n left in the row.
fn ld4_do(at: u32, n: u32) -> vec4f {
  var x = vec4f(ld_do(at), 0.0, 0.0, 0.0);
  if (n > 1u) { x.y = ld_do(at + 1u); }
  if (n > 2u) { x.z = ld_do(at + 2u); }
  if (n > 3u) { x.w = ld_do(at + 3u); }
  return x;
}
