// deltanet segmented forward (mode fwd), pass 2: per (segment s, head bh, tile of 4·RC columns of
// G = [M | B], K × (K+V)) the segment's affine map S ↦ M S + B composed over its chunks. From
// G = [I | 0], per chunk (W, K, U from chunk_prep.wgsl):
//   X = [0 | U] − W G,  G ← G + Kᵀ X,
// which is the chunk's state update applied to the columns of G, so after the segment M is the
// product of its I − KᵀW and B its state from zero. Into wsg [B·H, NSEG, K, K+V], fp32.
override NS: u32 = 1024;  // vec4s of sS: 4·max(RK, RT)·RC

var<workgroup> sW: array<vec4f, 4u * RT * RK>;  // W rows [4·RT][RK]
var<workgroup> sK: array<vec4f, 4u * RT * RK>;  // K rows [4·RT][RK]
var<workgroup> sS: array<vec4f, NS>;            // G tile [4·RK][RC], then X [4·RT][RC]

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

  // [I | 0]: ones where a row of M meets its own column.
  var g: array<vec4f, 4>;
  for (var i = 0u; i < 4u; i++) {
    let row = 4u * tr + i;
    g[i] = select(vec4f(0.0), vec4f(1.0), vec4u(col) + vec4u(0u, 1u, 2u, 3u) == vec4u(row));
    if (row >= K) { g[i] = vec4f(0.0); }
  }
  let c1 = min((s + 1u) * CPS, p.NC);
  for (var n = s * CPS; n < c1; n++) {
    let cb = (bh * p.NC + n) * C;
    if (sact) {
      for (var i = 0u; i < 4u; i++) { sS[(4u * tr + i) * RC + c] = g[i]; }
    }
    for (var e = lid; e < CP * RK; e += WGN) {
      let t = e / RK;
      let k4 = 4u * (e % RK);
      var w = vec4f(0.0);
      var k = vec4f(0.0);
      if (t < C) {
        w = ld4_wsw((cb + t) * K + k4, K - k4);
        k = ld4_wsk((cb + t) * K + k4, K - k4);
      }
      sW[e] = w;
      sK[e] = k;
    }
    // [0 | U]: columns past K take U's, columns past K + V are padding.
    var x: array<vec4f, 4>;
    for (var i = 0u; i < 4u; i++) {
      let t = 4u * tr + i;
      x[i] = vec4f(0.0);
      if (xact && t < C) {
        for (var j = 0u; j < 4u; j++) {
          let gc = col + j;
          if (gc >= K && gc < KW) { x[i][j] = wsu[(cb + t) * V + gc - K]; }
        }
      }
    }
    workgroupBarrier();

    if (xact) {
      for (var k4 = 0u; k4 < RK; k4++) {
        let at = 4u * k4 * RC + c;
        let b0 = sS[at];
        let b1 = sS[at + RC];
        let b2 = sS[at + 2u * RC];
        let b3 = sS[at + 3u * RC];
        let w = 4u * tr * RK + k4;
        x[0] = mac4(x[0], -sW[w], b0, b1, b2, b3);
        x[1] = mac4(x[1], -sW[w + RK], b0, b1, b2, b3);
        x[2] = mac4(x[2], -sW[w + 2u * RK], b0, b1, b2, b3);
        x[3] = mac4(x[3], -sW[w + 3u * RK], b0, b1, b2, b3);
      }
    }
    workgroupBarrier();
    if (xact) {
      for (var i = 0u; i < 4u; i++) { sS[(4u * tr + i) * RC + c] = x[i]; }
    }
    workgroupBarrier();
    if (sact) {
      for (var t = 0u; t < CP; t++) {
        let a = sK[t * RK + tr];
        let b = sS[t * RC + c];
        g[0] = fma(vec4f(a.x), b, g[0]);
        g[1] = fma(vec4f(a.y), b, g[1]);
        g[2] = fma(vec4f(a.z), b, g[2]);
        g[3] = fma(vec4f(a.w), b, g[3]);
      }
    }
    workgroupBarrier();
  }
  if (!sact || col >= KW) { return; }
  let nseg = (p.NC + CPS - 1u) / CPS;
  let base = (bh * nseg + s) * K * KW;
  for (var i = 0u; i < 4u; i++) {
    let row = 4u * tr + i;
    if (row < K) { st4_wsg(base + row * KW + col, KW - col, g[i]); }
  }
}
