// deltanet segmented forward (mode fwd), pass 2, v2 (knob deltanet.sum = 2): seg_sum.wgsl's walk
// (per (segment s, head bh, tile of 4·RC columns of G = [M | B]): G = [I | 0], per chunk
// X = [0 | U] − W G, G ← G + Kᵀ X) with the register tiles held in named vec4s instead of
// function-scope arrays, every loop over a tile's four rows written out, so that no tile can land
// in local memory; [0 | U] is loaded as vec4s where the tile lies wholly in U, and the next
// chunk's W and K rows are loaded into registers while this chunk's products run.
override NS: u32 = 1024;  // vec4s of sS: 4·max(RK, RT)·RC
override PF: u32 = 4;     // vec4s of W (and of K) each invocation stages per chunk: ⌈4·RT·RK / WGN⌉

var<workgroup> sW: array<vec4f, 4u * RT * RK>;  // W rows [4·RT][RK]
var<workgroup> sK: array<vec4f, 4u * RT * RK>;  // K rows [4·RT][RK]
var<workgroup> sS: array<vec4f, NS>;            // G tile [4·RK][RC], then X [4·RT][RC]

// Column `col`…col+3 of [0 | U] at chunk row t (zero past C and past K + V).
fn ld_xu(cb: u32, t: u32, col: u32) -> vec4f {
  var x = vec4f(0.0);
  if (t >= C) { return x; }
  let KW = K + V;
  if (col >= K && col + 3u < KW) { return ld4_wsu((cb + t) * V + col - K, 4u); }
  for (var j = 0u; j < 4u; j++) {
    let gc = col + j;
    if (gc >= K && gc < KW) { x[j] = wsu[(cb + t) * V + gc - K]; }
  }
  return x;
}

fn ldsw(cb: u32, e: u32) -> vec4f {
  let t = e / RK;
  let k4 = 4u * (e % RK);
  if (t >= C || e >= 4u * RT * RK) { return vec4f(0.0); }
  return ld4_wsw((cb + t) * K + k4, K - k4);
}
fn ldsk(cb: u32, e: u32) -> vec4f {
  let t = e / RK;
  let k4 = 4u * (e % RK);
  if (t >= C || e >= 4u * RT * RK) { return vec4f(0.0); }
  return ld4_wsk((cb + t) * K + k4, K - k4);
}

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

  // [I | 0]: ones where a row of M meets its own column; rows past K zero.
  let cols = vec4u(col) + vec4u(0u, 1u, 2u, 3u);
  var g0 = select(vec4f(0.0), vec4f(1.0), cols == vec4u(r0) & vec4<bool>(r0 < K));
  var g1 = select(vec4f(0.0), vec4f(1.0), cols == vec4u(r0 + 1u) & vec4<bool>(r0 + 1u < K));
  var g2 = select(vec4f(0.0), vec4f(1.0), cols == vec4u(r0 + 2u) & vec4<bool>(r0 + 2u < K));
  var g3 = select(vec4f(0.0), vec4f(1.0), cols == vec4u(r0 + 3u) & vec4<bool>(r0 + 3u < K));

  let c0 = s * CPS;
  let c1 = min((s + 1u) * CPS, p.NC);
  // This invocation's share of the chunk's W and K rows (PF ≤ 4), loaded a chunk ahead.
  var cb = (bh * p.NC + c0) * C;
  var w0 = ldsw(cb, lid);
  var w1 = vec4f(0.0);
  var w2 = vec4f(0.0);
  var w3 = vec4f(0.0);
  var k0 = ldsk(cb, lid);
  var k1 = vec4f(0.0);
  var k2 = vec4f(0.0);
  var k3 = vec4f(0.0);
  if (PF > 1u) {
    w1 = ldsw(cb, lid + WGN);
    k1 = ldsk(cb, lid + WGN);
  }
  if (PF > 2u) {
    w2 = ldsw(cb, lid + 2u * WGN);
    k2 = ldsk(cb, lid + 2u * WGN);
  }
  if (PF > 3u) {
    w3 = ldsw(cb, lid + 3u * WGN);
    k3 = ldsk(cb, lid + 3u * WGN);
  }
  for (var n = c0; n < c1; n++) {
    cb = (bh * p.NC + n) * C;
    if (sact) {
      sS[r0 * RC + c] = g0;
      sS[(r0 + 1u) * RC + c] = g1;
      sS[(r0 + 2u) * RC + c] = g2;
      sS[(r0 + 3u) * RC + c] = g3;
    }
    let NE = CP * RK;
    if (lid < NE) {
      sW[lid] = w0;
      sK[lid] = k0;
    }
    if (PF > 1u && lid + WGN < NE) {
      sW[lid + WGN] = w1;
      sK[lid + WGN] = k1;
    }
    if (PF > 2u && lid + 2u * WGN < NE) {
      sW[lid + 2u * WGN] = w2;
      sK[lid + 2u * WGN] = k2;
    }
    if (PF > 3u && lid + 3u * WGN < NE) {
      sW[lid + 3u * WGN] = w3;
      sK[lid + 3u * WGN] = k3;
    }
    var x0 = vec4f(0.0);
    var x1 = vec4f(0.0);
    var x2 = vec4f(0.0);
    var x3 = vec4f(0.0);
    if (xact) {
      x0 = ld_xu(cb, r0, col);
      x1 = ld_xu(cb, r0 + 1u, col);
      x2 = ld_xu(cb, r0 + 2u, col);
      x3 = ld_xu(cb, r0 + 3u, col);
    }
    workgroupBarrier();
    // The next chunk's share, in flight during this chunk's products.
    if (n + 1u < c1) {
      let nb = cb + C;
      w0 = ldsw(nb, lid);
      k0 = ldsk(nb, lid);
      if (PF > 1u) {
        w1 = ldsw(nb, lid + WGN);
        k1 = ldsk(nb, lid + WGN);
      }
      if (PF > 2u) {
        w2 = ldsw(nb, lid + 2u * WGN);
        k2 = ldsk(nb, lid + 2u * WGN);
      }
      if (PF > 3u) {
        w3 = ldsw(nb, lid + 3u * WGN);
        k3 = ldsk(nb, lid + 3u * WGN);
      }
    }

    if (xact) {
      for (var k4 = 0u; k4 < RK; k4++) {
        let at = 4u * k4 * RC + c;
        let b0 = sS[at];
        let b1 = sS[at + RC];
        let b2 = sS[at + 2u * RC];
        let b3 = sS[at + 3u * RC];
        let w = r0 * RK + k4;
        x0 = mac4(x0, -sW[w], b0, b1, b2, b3);
        x1 = mac4(x1, -sW[w + RK], b0, b1, b2, b3);
        x2 = mac4(x2, -sW[w + 2u * RK], b0, b1, b2, b3);
        x3 = mac4(x3, -sW[w + 3u * RK], b0, b1, b2, b3);
      }
    }
    workgroupBarrier();
    if (xact) {
      sS[r0 * RC + c] = x0;
      sS[(r0 + 1u) * RC + c] = x1;
      sS[(r0 + 2u) * RC + c] = x2;
      sS[(r0 + 3u) * RC + c] = x3;
    }
    workgroupBarrier();
    if (sact) {
      for (var t = 0u; t < CP; t++) {
        let a = sK[t * RK + tr];
        let b = sS[t * RC + c];
        g0 = fma(vec4f(a.x), b, g0);
        g1 = fma(vec4f(a.y), b, g1);
        g2 = fma(vec4f(a.z), b, g2);
        g3 = fma(vec4f(a.w), b, g3);
      }
    }
    workgroupBarrier();
  }
  if (!sact || col >= KW) { return; }
  let nseg = (p.NC + CPS - 1u) / CPS;
  let base = (bh * nseg + s) * K * KW;
  if (r0 < K) { st4_wsg(base + r0 * KW + col, KW - col, g0); }
  if (r0 + 1u < K) { st4_wsg(base + (r0 + 1u) * KW + col, KW - col, g1); }
  if (r0 + 2u < K) { st4_wsg(base + (r0 + 2u) * KW + col, KW - col, g2); }
  if (r0 + 3u < K) { st4_wsg(base + (r0 + 3u) * KW + col, KW - col, g3); }
}
