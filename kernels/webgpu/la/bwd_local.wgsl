// la backward pass 1 (after the forward, whose ws holds each chunk's starting S, z): per
// (chunk n, head bh), with P = tril(Φq Φkᵀ), N = Φq S + P V, Dn = Φq z + P·1 + 1e-6:
//   ∂N = dO / Dn, ∂D = −(dO · N) / Dn² when normalizing, else ∂N = scale·dO, ∂D = 0,
// stored per row in wsn [B·H, NC, C, V + 1] (∂N then ∂D); and the chunk's contributions to
// the state gradients, Φqᵀ ∂N [K×V] and Φqᵀ ∂D [K], into wsd [B·H, NC, K·V + K].
// Invocations own 4×4 tiles by index: a score tile (ib, jb) of P for lid < C4² (lower block
// triangle only), a tile (r, c) of N, then ∂N, for lid < C4·V4, and a tile (r, c) of Φqᵀ∂N
// for lid < K4·V4. Phases (normalizing; otherwise only the last two):
//   1. over key slabs: P, Φq S and Φq z;
//   2. P to sP, then over token slabs of V: N += P V and Dn += P·1 (blocks at or left of the
//      diagonal only);
//   3. ∂N, and ∂D from the row sums of dO ⊙ N gathered through sX; ∂N replaces P in sP;
//   4. over token slabs of Φq: Φqᵀ∂N and Φqᵀ∂D.
// Normalization comes from the uniform (flags bit 1), not an override: an override bool in
// this shader made Naga 29 panic (arena/handlevec.rs) at pipeline creation.

var<workgroup> sP: array<vec4f, 4u * C4 * PW>;  // P [4·C4][C4], then ∂N [4·C4][V4]
var<workgroup> sX: array<vec4f, NX>;            // the phase's slabs
var<workgroup> sD: array<f32, 4u * C4>;         // ∂D

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let st = (bh * p.NC + n) * (K * V + K);  // S, z before this chunk in ws; its slot in wsd
  let nb = (bh * p.NC + n) * C * (V + 1u);  // this chunk's rows in wsn
  let NORMALIZE = (p.flags & 2u) != 0u;
  let CP = 4u * C4;
  let ib = lid / C4;
  let jb = lid % C4;
  let isP = lid < C4 * C4 && jb <= ib;
  let r = lid / V4;
  let c = lid % V4;
  let isN = lid < C4 * V4;
  let isS = lid < K4 * V4;

  var nt = mat4x4f();
  var den = vec4f(0.0);
  if (NORMALIZE) {
    // Phase 1. sX: Φq [CP][D4], Φk [CP][D4], S rows [D][V4], z [D4].
    let oK = CP * D4;
    let oS = 2u * CP * D4;
    let oZ = oS + D * V4;
    var pt = mat4x4f();
    for (var k0 = 0u; k0 < K; k0 += D) {
      for (var e = lid; e < CP * D4; e += NT) {
        let t = e / D4;
        let b = k0 / 4u + e % D4;
        var xq = vec4f(0.0);
        var xk = vec4f(0.0);
        if (t < len) {
          let rb = row_base(bh, t0 + t, K);
          xq = phi4_q(rb, b);
          xk = phi4_k(rb, b);
        }
        sX[e] = xq;
        sX[oK + e] = xk;
      }
      for (var e = lid; e < D * V4; e += NT) { sX[oS + e] = ld4_ws(st, k0 + e / V4, e % V4); }
      for (var e = lid; e < D4; e += NT) {
        var z = vec4f(0.0);
        for (var j = 0u; j < 4u; j++) {
          if (k0 + 4u * e + j < K) { z[j] = ws[st + K * V + k0 + 4u * e + j]; }
        }
        sX[oZ + e] = z;
      }
      workgroupBarrier();
      for (var d4 = 0u; d4 < D4; d4++) {
        if (isP) {
          pt = mmt(pt, rows_x(4u * ib * D4 + d4, D4), rows_x(oK + 4u * jb * D4 + d4, D4));
        }
        if (isN) {
          let a = rows_x(4u * r * D4 + d4, D4);
          nt = mma(nt, a, rows_x(oS + 4u * d4 * V4 + c, V4));
          den += sX[oZ + d4] * a;
        }
      }
      workgroupBarrier();
    }
    // Phase 2. Tiles above the block diagonal are never stored, nor read.
    if (isP) {
      if (jb == ib) { pt = tril4(pt); }
      let w = 4u * ib * C4 + jb;
      sP[w] = pt[0];
      sP[w + C4] = pt[1];
      sP[w + 2u * C4] = pt[2];
      sP[w + 3u * C4] = pt[3];
    }
    workgroupBarrier();
    for (var s0 = 0u; s0 < len; s0 += D) {
      for (var e = lid; e < D * V4; e += NT) {
        let t = s0 + e / V4;
        var x = vec4f(0.0);
        if (t < len) { x = ld4_v(row_base(bh, t0 + t, V), e % V4); }
        sX[e] = x;
      }
      workgroupBarrier();
      if (isN) {
        for (var d4 = 0u; d4 < D4; d4++) {
          let b = s0 / 4u + d4;
          if (b > r) { break; }
          let a = rows_p(4u * r * C4 + b, C4);
          nt = mma(nt, a, rows_x(4u * d4 * V4 + c, V4));
          den += vec4f(1.0) * a;
        }
      }
      workgroupBarrier();
    }
  }

  // Phase 3. Rows past len have dO = 0, so their ∂N, ∂D are 0 (wsn keeps whole chunks).
  if (isN) {
    let o = mat4x4f(
      ld4_do(bh, t0, 4u * r, len, c),
      ld4_do(bh, t0, 4u * r + 1u, len, c),
      ld4_do(bh, t0, 4u * r + 2u, len, c),
      ld4_do(bh, t0, 4u * r + 3u, len, c),
    );
    if (NORMALIZE) {
      let inv = 1.0 / (den + 1e-6);
      sX[r * V4 + c] = vec4f(dot(o[0], nt[0]), dot(o[1], nt[1]), dot(o[2], nt[2]), dot(o[3], nt[3]));
      nt = mat4x4f(o[0] * inv.x, o[1] * inv.y, o[2] * inv.z, o[3] * inv.w);
    } else {
      nt = p.scale * o;
    }
    let w = 4u * r * V4 + c;
    sP[w] = nt[0];
    sP[w + V4] = nt[1];
    sP[w + 2u * V4] = nt[2];
    sP[w + 3u * V4] = nt[3];
  }
  workgroupBarrier();
  if (isN) {
    var gd = vec4f(0.0);
    if (NORMALIZE) {
      var dd = vec4f(0.0);
      for (var b = 0u; b < V4; b++) { dd += sX[r * V4 + b]; }
      let dn = den + 1e-6;
      gd = -dd / (dn * dn);
    }
    put_dn(nb, 4u * r, c, gd.x);
    put_dn(nb, 4u * r + 1u, c, gd.y);
    put_dn(nb, 4u * r + 2u, c, gd.z);
    put_dn(nb, 4u * r + 3u, c, gd.w);
  }
  workgroupBarrier();

  // Phase 4. sX: Φq rows [D][K4].
  var dst = mat4x4f();
  var dz = vec4f(0.0);
  for (var s0 = 0u; s0 < len; s0 += D) {
    for (var e = lid; e < D * K4; e += NT) {
      let t = s0 + e / K4;
      var x = vec4f(0.0);
      if (t < len) { x = phi4_q(row_base(bh, t0 + t, K), e % K4); }
      sX[e] = x;
    }
    workgroupBarrier();
    if (isS) {
      let m = min(D, len - s0);
      for (var i = 0u; i < m; i++) {
        let a = sX[i * K4 + r];
        dst = outer(dst, a, sP[(s0 + i) * V4 + c]);
        dz = fma(a, vec4f(sD[s0 + i]), dz);
      }
    }
    workgroupBarrier();
  }
  if (isS) {
    put_ds(st, 4u * r, c, dst[0], dz.x);
    put_ds(st, 4u * r + 1u, c, dst[1], dz.y);
    put_ds(st, 4u * r + 2u, c, dst[2], dz.z);
    put_ds(st, 4u * r + 3u, c, dst[3], dz.w);
  }
}

// Chunk row t of ∂N (from sP) and ∂D into wsn, columns 4c…4c+3 (∂D and sD by column block 0).
fn put_dn(nb: u32, t: u32, c: u32, gd: f32) {
  if (t >= C) { return; }
  let row = nb + t * (V + 1u);
  let g = sP[t * V4 + c];
  for (var j = 0u; j < 4u; j++) {
    if (4u * c + j < V) { wsn[row + 4u * c + j] = g[j]; }
  }
  if (c == 0u) {
    wsn[row + V] = gd;
    sD[t] = gd;
  }
}

// Row k of Φqᵀ∂N, columns 4c…4c+3, and (column block 0) entry k of Φqᵀ∂D into wsd.
fn put_ds(st: u32, k: u32, c: u32, x: vec4f, dz: f32) {
  if (k >= K) { return; }
  for (var j = 0u; j < 4u; j++) {
    if (4u * c + j < V) { wsd[st + k * V + 4u * c + j] = x[j]; }
  }
  if (c == 0u) { wsd[st + K * V + k] = dz; }
}
