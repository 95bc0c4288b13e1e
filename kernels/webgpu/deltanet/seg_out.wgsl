// deltanet segmented forward (mode fwd), pass 4: per (segment s, head bh, tile of 4·RC value
// columns) the outputs, walking the segment's chunks from S = its start state (wsg's B part after
// seg_scan.wgsl). Per chunk, with Q, K (normalized), W, U and P = tril(Q Kᵀ) from chunk_prep.wgsl:
//   X = U − W S,  O = scale·(Q S + P X),  S ← S + Kᵀ X.
// The columns of S evolve independently, so a tile needs only its own columns of U and O. The
// three workgroup arrays are reused between the two halves of a chunk (W then P, Q then K, S then
// X), which is what fits 48 KiB at C = K = V = 64 with a whole row of S (RC = 16) per workgroup.
// The state and X tiles are named vec4s, every loop over a tile's four rows written out: an
// array<vec4f, 4> indexed in loops stayed in local memory on the H100's Vulkan compiler and made
// this pass 2.4× slower (docs/perf-notes.md).
// With STATES (fwdbwd, deltanet.bwd_seg = 2) it also leaves what chunk_rec.wgsl leaves for the
// backward: each chunk's starting S in wss and X = V_new over U in wsu. STATES is a pipeline
// constant: with it false (mode fwd) those stores are dead branches the compiler drops.
override STATES: bool = false;
override NA: u32 = 1024;  // vec4s of sA: 4·RT·max(RK, RT)
override NS: u32 = 1024;  // vec4s of sS: 4·max(RK, RT)·RC

var<workgroup> sA: array<vec4f, NA>;            // W rows [4·RT][RK], then P rows [4·RT][RT]
var<workgroup> sB: array<vec4f, 4u * RT * RK>;  // Q rows, then K rows [4·RT][RK]
var<workgroup> sS: array<vec4f, NS>;            // S tile [4·RK][RC], then X [4·RT][RC]

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

  let nseg = (p.NC + CPS - 1u) / CPS;
  let gbase = (bh * nseg + s) * K * KW + K;
  let r0 = 4u * tr;
  var st0 = vec4f(0.0);
  var st1 = vec4f(0.0);
  var st2 = vec4f(0.0);
  var st3 = vec4f(0.0);
  if (sact && col < V) {
    if (r0 < K) { st0 = ld4_wsg(gbase + r0 * KW + col, V - col); }
    if (r0 + 1u < K) { st1 = ld4_wsg(gbase + (r0 + 1u) * KW + col, V - col); }
    if (r0 + 2u < K) { st2 = ld4_wsg(gbase + (r0 + 2u) * KW + col, V - col); }
    if (r0 + 3u < K) { st3 = ld4_wsg(gbase + (r0 + 3u) * KW + col, V - col); }
  }
  let c1 = min((s + 1u) * CPS, p.NC);
  for (var n = s * CPS; n < c1; n++) {
    let cb = (bh * p.NC + n) * C;
    if (sact) {
      sS[r0 * RC + c] = st0;
      sS[(r0 + 1u) * RC + c] = st1;
      sS[(r0 + 2u) * RC + c] = st2;
      sS[(r0 + 3u) * RC + c] = st3;
      if (STATES && col < V) {
        let sb = (bh * p.NC + n) * K * V + col;
        if (r0 < K) { st4_wss(sb + r0 * V, V - col, st0); }
        if (r0 + 1u < K) { st4_wss(sb + (r0 + 1u) * V, V - col, st1); }
        if (r0 + 2u < K) { st4_wss(sb + (r0 + 2u) * V, V - col, st2); }
        if (r0 + 3u < K) { st4_wss(sb + (r0 + 3u) * V, V - col, st3); }
      }
    }
    for (var e = lid; e < CP * RK; e += WGN) {
      let t = e / RK;
      let k4 = 4u * (e % RK);
      var w = vec4f(0.0);
      var q = vec4f(0.0);
      if (t < C) {
        w = ld4_wsw((cb + t) * K + k4, K - k4);
        q = ld4_wsq((cb + t) * K + k4, K - k4);
      }
      sA[e] = w;
      sB[e] = q;
    }
    var x0 = vec4f(0.0);
    var x1 = vec4f(0.0);
    var x2 = vec4f(0.0);
    var x3 = vec4f(0.0);
    if (xact && col < V) {
      if (r0 < C) { x0 = ld4_wsu((cb + r0) * V + col, V - col); }
      if (r0 + 1u < C) { x1 = ld4_wsu((cb + r0 + 1u) * V + col, V - col); }
      if (r0 + 2u < C) { x2 = ld4_wsu((cb + r0 + 2u) * V + col, V - col); }
      if (r0 + 3u < C) { x3 = ld4_wsu((cb + r0 + 3u) * V + col, V - col); }
    }
    workgroupBarrier();

    var o0 = vec4f(0.0);
    var o1 = vec4f(0.0);
    var o2 = vec4f(0.0);
    var o3 = vec4f(0.0);
    if (xact) {
      for (var k4 = 0u; k4 < RK; k4++) {
        let at = 4u * k4 * RC + c;
        let b0 = sS[at];
        let b1 = sS[at + RC];
        let b2 = sS[at + 2u * RC];
        let b3 = sS[at + 3u * RC];
        let a = 4u * tr * RK + k4;
        x0 = mac4(x0, -sA[a], b0, b1, b2, b3);
        x1 = mac4(x1, -sA[a + RK], b0, b1, b2, b3);
        x2 = mac4(x2, -sA[a + 2u * RK], b0, b1, b2, b3);
        x3 = mac4(x3, -sA[a + 3u * RK], b0, b1, b2, b3);
        o0 = mac4(o0, sB[a], b0, b1, b2, b3);
        o1 = mac4(o1, sB[a + RK], b0, b1, b2, b3);
        o2 = mac4(o2, sB[a + 2u * RK], b0, b1, b2, b3);
        o3 = mac4(o3, sB[a + 3u * RK], b0, b1, b2, b3);
      }
    }
    workgroupBarrier();
    if (STATES && xact && col < V) {
      // Only this invocation read these U entries (above), so V_new may replace them.
      if (r0 < C) { st4_wsu((cb + r0) * V + col, V - col, x0); }
      if (r0 + 1u < C) { st4_wsu((cb + r0 + 1u) * V + col, V - col, x1); }
      if (r0 + 2u < C) { st4_wsu((cb + r0 + 2u) * V + col, V - col, x2); }
      if (r0 + 3u < C) { st4_wsu((cb + r0 + 3u) * V + col, V - col, x3); }
    }
    if (xact) {
      sS[r0 * RC + c] = x0;
      sS[(r0 + 1u) * RC + c] = x1;
      sS[(r0 + 2u) * RC + c] = x2;
      sS[(r0 + 3u) * RC + c] = x3;
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
    workgroupBarrier();

    if (xact) {
      // P is lower triangular: row block tr sees the X rows of blocks 0…tr only.
      for (var j4 = 0u; j4 <= tr; j4++) {
        let at = 4u * j4 * RC + c;
        let b0 = sS[at];
        let b1 = sS[at + RC];
        let b2 = sS[at + 2u * RC];
        let b3 = sS[at + 3u * RC];
        let a = 4u * tr * RT + j4;
        o0 = mac4(o0, sA[a], b0, b1, b2, b3);
        o1 = mac4(o1, sA[a + RT], b0, b1, b2, b3);
        o2 = mac4(o2, sA[a + 2u * RT], b0, b1, b2, b3);
        o3 = mac4(o3, sA[a + 3u * RT], b0, b1, b2, b3);
      }
      let len = min(C, p.T - n * C);
      store_o(bh, n * C, 4u * tr, len, col, o0);
      store_o(bh, n * C, 4u * tr + 1u, len, col, o1);
      store_o(bh, n * C, 4u * tr + 2u, len, col, o2);
      store_o(bh, n * C, 4u * tr + 3u, len, col, o3);
    }
    if (sact) {
      for (var t = 0u; t < CP; t++) {
        let a = sB[t * RK + tr];
        let b = sS[t * RC + c];
        st0 = fma(vec4f(a.x), b, st0);
        st1 = fma(vec4f(a.y), b, st1);
        st2 = fma(vec4f(a.z), b, st2);
        st3 = fma(vec4f(a.w), b, st3);
      }
    }
    workgroupBarrier();
  }
}

// Output row t0 + t, columns col…col+3 (scaled), in pairs so that a bf16 word is written whole.
fn store_o(bh: u32, t0: u32, t: u32, len: u32, col: u32, o: vec4f) {
  if (t >= len || col >= V) { return; }
  let r = row_base(bh, t0 + t, V) + col;
  let y = o * p.scale;
  st2_o(r, y.x, y.y, col + 1u < V);
  if (col + 2u < V) { st2_o(r + 2u, y.z, y.w, col + 3u < V); }
}
