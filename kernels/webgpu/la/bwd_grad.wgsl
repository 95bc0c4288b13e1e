// la backward pass 3: per (chunk n, head bh), from S, z before the chunk (ws), dS, dz after it
// (wsd after the suffix scan) and ∂N, ∂D (wsn):
//   dV = Pᵀ ∂N + Φk dS                         (P = tril(Φq Φkᵀ))
//   dP = tril(∂N Vᵀ + ∂D 1ᵀ)                    (replaces P in sP)
//   dΦq = ∂N Sᵀ + ∂D zᵀ + dP Φk;  dq = dΦq ⊙ φ′(q)
//   dΦk = dPᵀ Φq + V dSᵀ + 1 dzᵀ;  dk = dΦk ⊙ φ′(k)
// Invocations own 4×4 tiles by index: a tile (ib, jb) of P, then dP, for lid < C4² (lower block
// triangle only), a tile (jv, cv) of dV for lid < C4·V4, tiles (iq, kq) of dΦq and dΦk for
// lid < C4·K4. Phases:
//   1. over key slabs: P and Φk dS;
//   2. P to sP, then over token slabs of ∂N: dV += Pᵀ∂N (rows at or below the tile's block);
//   3. over value slabs: ∂N Vᵀ, ∂N Sᵀ and V dSᵀ;
//   4. dP to sP, then over token slabs of Φq, Φk: dΦq += dP Φk, dΦk += dPᵀ Φq.

var<workgroup> sP: array<vec4f, 4u * C4 * PW>;  // P, then dP [4·C4][C4]
var<workgroup> sX: array<vec4f, NX>;            // the phase's slabs

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let st = (bh * p.NC + n) * (K * V + K);
  let nb = (bh * p.NC + n) * C * (V + 1u);
  let CP = 4u * C4;
  let KP = 4u * K4;
  let ib = lid / C4;
  let jb = lid % C4;
  let isP = lid < C4 * C4 && jb <= ib;
  let jv = lid / V4;
  let cv = lid % V4;
  let isV = lid < C4 * V4;
  let iq = lid / K4;
  let kq = lid % K4;
  let isQ = lid < C4 * K4;

  // Phase 1. sX: Φq [CP][D4], Φk [CP][D4], dS rows [D][V4].
  var pt = mat4x4f();
  var dv = mat4x4f();
  {
    let oK = CP * D4;
    let oS = 2u * CP * D4;
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
      for (var e = lid; e < D * V4; e += NT) { sX[oS + e] = ld4_wsd(st, k0 + e / V4, e % V4); }
      workgroupBarrier();
      for (var d4 = 0u; d4 < D4; d4++) {
        if (isP) {
          pt = mmt(pt, rows_x(4u * ib * D4 + d4, D4), rows_x(oK + 4u * jb * D4 + d4, D4));
        }
        if (isV) {
          dv = mma(dv, rows_x(oK + 4u * jv * D4 + d4, D4), rows_x(oS + 4u * d4 * V4 + cv, V4));
        }
      }
      workgroupBarrier();
    }
  }

  // Phase 2. Tiles above the block diagonal are never stored, nor read. sX: ∂N rows [D][V4].
  if (isP) { put_p(ib, jb, pt); }
  workgroupBarrier();
  for (var s0 = 0u; s0 < len; s0 += D) {
    for (var e = lid; e < D * V4; e += NT) {
      let t = s0 + e / V4;
      var x = vec4f(0.0);
      if (t < len) { x = ld4_dn(nb, t, e % V4); }
      sX[e] = x;
    }
    workgroupBarrier();
    if (isV) {
      let m = min(D, len - s0);
      for (var i = select(0u, 4u * jv - s0, 4u * jv > s0); i < m; i++) {
        dv = outer(dv, sP[(s0 + i) * C4 + jv], sX[i * V4 + cv]);
      }
    }
    workgroupBarrier();
  }

  // Phase 3. sX: ∂N [CP][D4], V [CP][D4], S [KP][D4], dS [KP][D4] (columns v0…v0+D).
  var dp = mat4x4f();
  var dq = mat4x4f();
  var dk = mat4x4f();
  {
    let oV = CP * D4;
    let oS = 2u * CP * D4;
    let oD = oS + KP * D4;
    for (var v0 = 0u; v0 < V; v0 += D) {
      for (var e = lid; e < CP * D4; e += NT) {
        let t = e / D4;
        let b = v0 / 4u + e % D4;
        var xn = vec4f(0.0);
        var xv = vec4f(0.0);
        if (t < len) {
          xn = ld4_dn(nb, t, b);
          xv = ld4_v(row_base(bh, t0 + t, V), b);
        }
        sX[e] = xn;
        sX[oV + e] = xv;
      }
      for (var e = lid; e < KP * D4; e += NT) {
        let k = e / D4;
        let b = v0 / 4u + e % D4;
        sX[oS + e] = ld4_ws(st, k, b);
        sX[oD + e] = ld4_wsd(st, k, b);
      }
      workgroupBarrier();
      for (var d4 = 0u; d4 < D4; d4++) {
        if (isP) {
          dp = mmt(dp, rows_x(4u * ib * D4 + d4, D4), rows_x(oV + 4u * jb * D4 + d4, D4));
        }
        if (isQ) {
          dq = mmt(dq, rows_x(4u * iq * D4 + d4, D4), rows_x(oS + 4u * kq * D4 + d4, D4));
          dk = mmt(dk, rows_x(oV + 4u * iq * D4 + d4, D4), rows_x(oD + 4u * kq * D4 + d4, D4));
        }
      }
      workgroupBarrier();
    }
  }

  // Phase 4. dP = tril(∂N Vᵀ + ∂D 1ᵀ); rows past len have ∂N = ∂D = 0. sX: Φq, Φk [D][K4].
  if (isP) {
    let d = vec4f(ld_dd(nb, 4u * ib), ld_dd(nb, 4u * ib + 1u), ld_dd(nb, 4u * ib + 2u),
      ld_dd(nb, 4u * ib + 3u));
    put_p(ib, jb, dp + mat4x4f(vec4f(d.x), vec4f(d.y), vec4f(d.z), vec4f(d.w)));
  }
  workgroupBarrier();
  let oK = D * K4;
  for (var s0 = 0u; s0 < len; s0 += D) {
    for (var e = lid; e < D * K4; e += NT) {
      let t = s0 + e / K4;
      var xq = vec4f(0.0);
      var xk = vec4f(0.0);
      if (t < len) {
        let rb = row_base(bh, t0 + t, K);
        xq = phi4_q(rb, e % K4);
        xk = phi4_k(rb, e % K4);
      }
      sX[e] = xq;
      sX[oK + e] = xk;
    }
    workgroupBarrier();
    if (isQ) {
      for (var d4 = 0u; d4 < D4; d4++) {
        let b = s0 / 4u + d4;
        if (b > iq) { break; }
        dq = mma(dq, rows_p(4u * iq * C4 + b, C4), rows_x(oK + 4u * d4 * K4 + kq, K4));
      }
      let m = min(D, len - s0);
      for (var i = select(0u, 4u * iq - s0, 4u * iq > s0); i < m; i++) {
        dk = outer(dk, sP[(s0 + i) * C4 + iq], sX[i * K4 + kq]);
      }
    }
    workgroupBarrier();
  }

  if (isV) {
    put_dv(bh, t0, len, 4u * jv, cv, dv[0]);
    put_dv(bh, t0, len, 4u * jv + 1u, cv, dv[1]);
    put_dv(bh, t0, len, 4u * jv + 2u, cv, dv[2]);
    put_dv(bh, t0, len, 4u * jv + 3u, cv, dv[3]);
  }
  if (isQ) {
    // + ∂D zᵀ and + 1 dzᵀ (z before the chunk, dz after it).
    var z = vec4f(0.0);
    var dz = vec4f(0.0);
    for (var j = 0u; j < 4u; j++) {
      if (4u * kq + j < K) {
        z[j] = ws[st + K * V + 4u * kq + j];
        dz[j] = wsd[st + K * V + 4u * kq + j];
      }
    }
    put_dqk(bh, t0, len, nb, 4u * iq, kq, dq[0], dk[0], z, dz);
    put_dqk(bh, t0, len, nb, 4u * iq + 1u, kq, dq[1], dk[1], z, dz);
    put_dqk(bh, t0, len, nb, 4u * iq + 2u, kq, dq[2], dk[2], z, dz);
    put_dqk(bh, t0, len, nb, 4u * iq + 3u, kq, dq[3], dk[3], z, dz);
  }
}

// A lower-block-triangle tile of P or dP into sP, the diagonal tile masked (inclusive).
fn put_p(ib: u32, jb: u32, x: mat4x4f) {
  var y = x;
  if (jb == ib) { y = tril4(x); }
  let w = 4u * ib * C4 + jb;
  sP[w] = y[0];
  sP[w + C4] = y[1];
  sP[w + 2u * C4] = y[2];
  sP[w + 3u * C4] = y[3];
}

// ∂D of chunk row t (0 past C).
fn ld_dd(nb: u32, t: u32) -> f32 {
  if (t >= C) { return 0.0; }
  return wsn[nb + t * (V + 1u) + V];
}

fn put_dv(bh: u32, t0: u32, len: u32, t: u32, c: u32, x: vec4f) {
  if (t >= len) { return; }
  let rb = row_base(bh, t0 + t, V);
  let v = 4u * c;
  if (v < V) { st2_dv(rb + v, x.x, x.y, v + 1u < V); }
  if (v + 2u < V) { st2_dv(rb + v + 2u, x.z, x.w, v + 3u < V); }
}

// Row t of dq, dk at columns 4c…4c+3, from dΦq, dΦk without their ∂D zᵀ, 1 dzᵀ terms.
fn put_dqk(bh: u32, t0: u32, len: u32, nb: u32, t: u32, c: u32, xq: vec4f, xk: vec4f,
           z: vec4f, dz: vec4f) {
  if (t >= len) { return; }
  let rb = row_base(bh, t0 + t, K);
  let gq = fma(vec4f(ld_dd(nb, t)), z, xq);
  let gk = xk + dz;
  var fq = vec4f(1.0);
  var fk = vec4f(1.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * c + j < K) {
      fq[j] = dphi(ld_q(rb + 4u * c + j));
      fk[j] = dphi(ld_k(rb + 4u * c + j));
    }
  }
  let yq = gq * fq;
  let yk = gk * fk;
  let k = 4u * c;
  if (k < K) {
    st2_dq(rb + k, yq.x, yq.y, k + 1u < K);
    st2_dk(rb + k, yk.x, yk.y, k + 1u < K);
  }
  if (k + 2u < K) {
    st2_dq(rb + k + 2u, yq.z, yq.w, k + 3u < K);
    st2_dk(rb + k + 2u, yk.z, yk.w, k + 3u < K);
  }
}
