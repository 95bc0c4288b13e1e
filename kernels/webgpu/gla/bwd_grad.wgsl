// gla backward pass 3: per (chunk n, head bh), from S_prev (ws), Γ (ws), dS after the chunk
// (wsd), the state after it (the next chunk's S_prev, or final_state) and G (wsg, bwd_local),
// with A_ij = Σ_l q_il k_jl exp(G_il − G_jl) and dA = scale · tril(dO Vᵀ) (docs/ops.md):
//   dV = scale Aᵀ dO + (K ⊙ exp(Γ − G)) dS
//   dq_il = scale (dO Sᵀ)_il exp(G_il) + Σ_{j≤i} dA_ij k_jl exp(G_il − G_jl)
//   dk_jl = Σ_{i≥j} dA_ij q_il exp(G_il − G_jl) + (V dSᵀ)_jl exp(Γ_l − G_jl)
//   dG = Q ⊙ dQ − K ⊙ dK, + rowsum(S_after ⊙ dS) on the last row; dg = reverse cumsum of dG
// with the block factoring of bwd_common.wgsl. Invocations own 4×4 tiles by index: (ib, jb) of
// A, then dA, for lid < C4² (lower block triangle), (jv, cv) of dV for lid < C4·V4, (iq, kq)
// of dq and dk for lid < C4·K4. Phases:
//   1. over key slabs: A and (K ⊙ exp(Γ − G)) dS;
//   2. A to sP, then over token slabs of scale·dO: dV += Aᵀ scale·dO;
//   3. over value slabs: dA, scale·dO Sᵀ, V dSᵀ and the Γ term;
//   4. dA to sP, then over token slabs: the intra-chunk terms of dq (blocks left of the tile's)
//      and dk (blocks below it), diagonal tiles apart; then dG through wsg and its reverse
//      cumsum, one invocation per pair of key columns.

var<workgroup> sP: array<vec4f, 4u * C4 * C4>;  // A, then dA [4·C4][C4]
var<workgroup> sX: array<vec4f, NX>;            // the phase's slabs
var<workgroup> sT: array<vec4f, K4>;            // rowsum(S_after ⊙ dS)

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let KVZ = K * V + K;
  let st = (bh * p.NC + n) * KVZ;
  let gb = (bh * p.NC + n) * C * K;
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

  // Phase 1. sX: Q̂, K̂, K ⊙ exp(Γ − G), q, k, G [CP][D4] each (rows past len: q = k = 0, G
  // repeats), dS rows [D][V4].
  var at = mat4x4f();
  var dv = mat4x4f();
  {
    let oKh = CP * D4;
    let oKt = 2u * oKh;
    let oq = 3u * oKh;
    let ok = 4u * oKh;
    let oG = 5u * oKh;
    let oS = 6u * oKh;
    for (var k0 = 0u; k0 < K; k0 += D) {
      for (var e = lid; e < CP * D4; e += NT) {
        let t = e / D4;
        let b = k0 / 4u + e % D4;
        let g = ld4_g(gb, min(t, len - 1u), b);
        var xq = vec4f(0.0);
        var xk = vec4f(0.0);
        var gbeg = vec4f(0.0);
        if (t >= 4u) { gbeg = ld4_g(gb, min(t / 4u * 4u - 1u, len - 1u), b); }
        let gend = ld4_g(gb, min(t / 4u * 4u + 3u, len - 1u), b);
        let gam = ld4_g(gb, len - 1u, b);
        if (t < len) {
          let rb = row_base(bh, t0 + t, K);
          xq = ld4_q(rb, b);
          xk = ld4_k(rb, b);
        }
        sX[e] = xq * exp(g - gbeg);
        sX[oKh + e] = xk * exp(gend - g);
        sX[oKt + e] = xk * exp(gam - g);
        sX[oq + e] = xq;
        sX[ok + e] = xk;
        sX[oG + e] = g;
      }
      for (var e = lid; e < D * V4; e += NT) {
        sX[oS + e] = ld4_wsd(st, k0 + e / V4, e % V4);
      }
      workgroupBarrier();
      for (var d4 = 0u; d4 < D4; d4++) {
        if (isP && jb < ib) {
          let f = exp(sX[oG + (4u * ib - 1u) * D4 + d4] - sX[oG + (4u * jb + 3u) * D4 + d4]);
          at = mmt(at, scale_cols(rows_x(4u * ib * D4 + d4, D4), f),
            rows_x(oKh + 4u * jb * D4 + d4, D4));
        } else if (isP) {
          let w = 4u * ib * D4 + d4;
          at = diag_tile(at, rows_x(oq + w, D4), rows_x(ok + w, D4), rows_x(oG + w, D4));
        }
        if (isV) {
          dv = mma(dv, rows_x(oKt + 4u * jv * D4 + d4, D4), rows_x(oS + 4u * d4 * V4 + cv, V4));
        }
      }
      workgroupBarrier();
    }
  }

  // Phase 2. Tiles above the block diagonal are never stored, nor read. sX: scale·dO [D][V4].
  if (isP) { put_p(ib, jb, at); }
  workgroupBarrier();
  for (var s0 = 0u; s0 < len; s0 += D) {
    for (var e = lid; e < D * V4; e += NT) {
      let t = s0 + e / V4;
      var x = vec4f(0.0);
      if (t < len) { x = p.scale * ld4_do(row_base(bh, t0 + t, V), e % V4); }
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

  // Phase 3. sX: scale·dO, V [CP][D4]; S_prev, dS, S_after [KP][D4] (columns v0…v0+D).
  var da = mat4x4f();
  var dqs = mat4x4f();
  var dkv = mat4x4f();
  var gam = vec4f(0.0);
  {
    let oV = CP * D4;
    let oS = 2u * CP * D4;
    let oD = oS + KP * D4;
    let oA = oD + KP * D4;
    let last = n + 1u == p.NC;
    for (var v0 = 0u; v0 < V; v0 += D) {
      for (var e = lid; e < CP * D4; e += NT) {
        let t = e / D4;
        let b = v0 / 4u + e % D4;
        var xo = vec4f(0.0);
        var xv = vec4f(0.0);
        if (t < len) {
          let rb = row_base(bh, t0 + t, V);
          xo = p.scale * ld4_do(rb, b);
          xv = ld4_v(rb, b);
        }
        sX[e] = xo;
        sX[oV + e] = xv;
      }
      for (var e = lid; e < KP * D4; e += NT) {
        let k = e / D4;
        let b = v0 / 4u + e % D4;
        sX[oS + e] = ld4_ws(st, k, b);
        sX[oD + e] = ld4_wsd(st, k, b);
        sX[oA + e] = ld4_after(st + KVZ, bh * K * V, last, k, b);
      }
      workgroupBarrier();
      for (var d4 = 0u; d4 < D4; d4++) {
        if (isP) {
          da = mmt(da, rows_x(4u * ib * D4 + d4, D4), rows_x(oV + 4u * jb * D4 + d4, D4));
        }
        if (isQ) {
          dqs = mmt(dqs, rows_x(4u * iq * D4 + d4, D4), rows_x(oS + 4u * kq * D4 + d4, D4));
          dkv = mmt(dkv, rows_x(oV + 4u * iq * D4 + d4, D4), rows_x(oD + 4u * kq * D4 + d4, D4));
        }
        if (lid < K4) {
          let w = 4u * lid * D4 + d4;
          gam += vec4f(dot(sX[oA + w], sX[oD + w]), dot(sX[oA + w + D4], sX[oD + w + D4]),
            dot(sX[oA + w + 2u * D4], sX[oD + w + 2u * D4]),
            dot(sX[oA + w + 3u * D4], sX[oD + w + 3u * D4]));
        }
      }
      workgroupBarrier();
    }
  }

  // Phase 4. sX: Q̂, K̂, q, k [D][K4]; G [D + 1][K4] from the row before the slab (0 before
  // the chunk), so a block's B and E are rows 4d4 and 4d4 + 4.
  if (isP) { put_p(ib, jb, da); }
  if (lid < K4) { sT[lid] = gam; }
  workgroupBarrier();
  var dqo = mat4x4f();  // off-diagonal blocks, before the row factor exp(G_i − B)
  var dko = mat4x4f();  // off-diagonal blocks, before the row factor exp(E − G_j)
  var dqd = mat4x4f();  // the diagonal block
  var dkd = mat4x4f();
  let oKh = D * K4;
  let oq = 2u * D * K4;
  let ok = 3u * D * K4;
  let oG = 4u * D * K4;
  var bq = vec4f(0.0);  // B and E of the tile's block iq
  if (iq > 0u) { bq = ld4_g(gb, min(4u * iq - 1u, len - 1u), kq); }
  let eq = ld4_g(gb, min(4u * iq + 3u, len - 1u), kq);
  for (var s0 = 0u; s0 < len; s0 += D) {
    for (var e = lid; e < D * K4; e += NT) {
      let t = s0 + e / K4;
      let b = e % K4;
      let g = ld4_g(gb, min(t, len - 1u), b);
      var gbeg = vec4f(0.0);
      if (t >= 4u) { gbeg = ld4_g(gb, min(t / 4u * 4u - 1u, len - 1u), b); }
      let gend = ld4_g(gb, min(t / 4u * 4u + 3u, len - 1u), b);
      var xq = vec4f(0.0);
      var xk = vec4f(0.0);
      if (t < len) {
        let rb = row_base(bh, t0 + t, K);
        xq = ld4_q(rb, b);
        xk = ld4_k(rb, b);
      }
      sX[e] = xq * exp(g - gbeg);
      sX[oKh + e] = xk * exp(gend - g);
      sX[oq + e] = xq;
      sX[ok + e] = xk;
      sX[oG + K4 + e] = g;
    }
    for (var e = lid; e < K4; e += NT) {
      var x = vec4f(0.0);
      if (s0 > 0u) { x = ld4_g(gb, s0 - 1u, e); }
      sX[oG + e] = x;
    }
    workgroupBarrier();
    if (isQ) {
      for (var d4 = 0u; d4 < D4; d4++) {
        let b = s0 / 4u + d4;
        let w = 4u * d4 * K4 + kq;
        let gw = oG + K4 + w;
        if (b < iq) {
          // dq, row block iq against the earlier block b: exp(B_iq − E_b) per key.
          let f = exp(bq - sX[gw + 3u * K4]);
          dqo += scale_cols(mma(mat4x4f(), rows_p(4u * iq * C4 + b, C4), rows_x(oKh + w, K4)), f);
        } else if (b > iq) {
          // dk, row block iq against the later block b: exp(B_b − E_iq) per key.
          let f = exp(sX[gw - K4] - eq);
          let a = rows_p(4u * b * C4 + iq, C4);
          dko += scale_cols(mma(mat4x4f(), transpose(a), rows_x(w, K4)), f);
        } else {
          let a = rows_p(4u * b * C4 + iq, C4);
          let e = decays(rows_x(gw, K4));
          dqd = diag_dq(dqd, a, rows_x(ok + w, K4), e);
          dkd = diag_dk(dkd, a, rows_x(oq + w, K4), e);
        }
      }
    }
    workgroupBarrier();
  }

  // dq, dk and dG of the tile's rows; dG waits in registers until every G has been read.
  var dg = mat4x4f();
  if (isQ) {
    let gam_row = ld4_g(gb, len - 1u, kq);
    let ekv = exp(gam_row - eq);
    let es = exp(bq);
    dg[0] = put_dqk(bh, t0, len, gb, 4u * iq, kq, dqo[0], dko[0], dqd[0], dkd[0], dqs[0] * es,
      dkv[0] * ekv, bq, eq);
    dg[1] = put_dqk(bh, t0, len, gb, 4u * iq + 1u, kq, dqo[1], dko[1], dqd[1], dkd[1],
      dqs[1] * es, dkv[1] * ekv, bq, eq);
    dg[2] = put_dqk(bh, t0, len, gb, 4u * iq + 2u, kq, dqo[2], dko[2], dqd[2], dkd[2],
      dqs[2] * es, dkv[2] * ekv, bq, eq);
    dg[3] = put_dqk(bh, t0, len, gb, 4u * iq + 3u, kq, dqo[3], dko[3], dqd[3], dkd[3],
      dqs[3] * es, dkv[3] * ekv, bq, eq);
  }
  if (isV) {
    put_dv(bh, t0, len, 4u * jv, cv, dv[0]);
    put_dv(bh, t0, len, 4u * jv + 1u, cv, dv[1]);
    put_dv(bh, t0, len, 4u * jv + 2u, cv, dv[2]);
    put_dv(bh, t0, len, 4u * jv + 3u, cv, dv[3]);
  }
  storageBarrier();
  workgroupBarrier();
  if (isQ) {
    put_g(gb, len, 4u * iq, kq, dg[0]);
    put_g(gb, len, 4u * iq + 1u, kq, dg[1]);
    put_g(gb, len, 4u * iq + 2u, kq, dg[2]);
    put_g(gb, len, 4u * iq + 3u, kq, dg[3]);
  }
  storageBarrier();
  workgroupBarrier();
  for (var l0 = 2u * lid; l0 < K; l0 += 2u * NT) {
    let l1 = min(l0 + 1u, K - 1u);
    var r0 = sT[l0 / 4u][l0 % 4u];
    var r1 = sT[l1 / 4u][l1 % 4u];
    for (var i = len; i > 0u; i--) {
      r0 += wsg[gb + (i - 1u) * K + l0];
      r1 += wsg[gb + (i - 1u) * K + l1];
      st2_dg(row_base(bh, t0 + i - 1u, K) + l0, r0, r1, l0 + 1u < K);
    }
  }
}

// Four vec4 rows of sP, `stride` vec4s apart.
fn rows_p(at: u32, stride: u32) -> mat4x4f {
  return mat4x4f(sP[at], sP[at + stride], sP[at + 2u * stride], sP[at + 3u * stride]);
}

// A lower-block-triangle tile of A or dA into sP, the diagonal tile masked (inclusive).
fn put_p(ib: u32, jb: u32, x: mat4x4f) {
  var y = x;
  if (jb == ib) { y = tril4(x); }
  let w = 4u * ib * C4 + jb;
  sP[w] = y[0];
  sP[w + C4] = y[1];
  sP[w + 2u * C4] = y[2];
  sP[w + 3u * C4] = y[3];
}

// Diagonal block of dq: row i gains Σ_{j≤i} dA_ij k_j ⊙ exp(G_i − G_j); a[i] is row i of dA
// against the block's columns, k the block's rows.
fn diag_dq(o: mat4x4f, a: mat4x4f, k: mat4x4f, e: Decays) -> mat4x4f {
  return o + mat4x4f(
    a[0].x * k[0],
    a[1].x * k[0] * e.e10 + a[1].y * k[1],
    a[2].x * k[0] * e.e20 + a[2].y * k[1] * e.e21 + a[2].z * k[2],
    a[3].x * k[0] * e.e30 + a[3].y * k[1] * e.e31 + a[3].z * k[2] * e.e32 + a[3].w * k[3],
  );
}

// Diagonal block of dk: row j gains Σ_{i≥j} dA_ij q_i ⊙ exp(G_i − G_j).
fn diag_dk(o: mat4x4f, a: mat4x4f, q: mat4x4f, e: Decays) -> mat4x4f {
  return o + mat4x4f(
    a[0].x * q[0] + a[1].x * q[1] * e.e10 + a[2].x * q[2] * e.e20 + a[3].x * q[3] * e.e30,
    a[1].y * q[1] + a[2].y * q[2] * e.e21 + a[3].y * q[3] * e.e31,
    a[2].z * q[2] + a[3].z * q[3] * e.e32,
    a[3].w * q[3],
  );
}

// Row k of the K×V state at ws[at] (dS at wsd[at]), columns 4b…4b+3 (zero past K, V).
fn ld4_ws(at: u32, k: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  if (k < K) {
    for (var j = 0u; j < 4u; j++) {
      if (4u * b + j < V) { x[j] = ws[at + k * V + 4u * b + j]; }
    }
  }
  return x;
}
fn ld4_wsd(at: u32, k: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  if (k < K) {
    for (var j = 0u; j < 4u; j++) {
      if (4u * b + j < V) { x[j] = wsd[at + k * V + 4u * b + j]; }
    }
  }
  return x;
}

// Row k of the state after the chunk: the next chunk's S_prev at ws[next], or final_state.
fn ld4_after(next: u32, fs: u32, last: bool, k: u32, b: u32) -> vec4f {
  var x = vec4f(0.0);
  if (k < K) {
    for (var j = 0u; j < 4u; j++) {
      let v = 4u * b + j;
      if (v >= V) { break; }
      if (last) {
        x[j] = final_state[fs + k * V + v];
      } else {
        x[j] = ws[next + k * V + v];
      }
    }
  }
  return x;
}

fn put_dv(bh: u32, t0: u32, len: u32, t: u32, c: u32, x: vec4f) {
  if (t >= len) { return; }
  let rb = row_base(bh, t0 + t, V);
  let v = 4u * c;
  if (v < V) { st2_dv(rb + v, x.x, x.y, v + 1u < V); }
  if (v + 2u < V) { st2_dv(rb + v + 2u, x.z, x.w, v + 3u < V); }
}

// Row t of dq, dk (columns 4c…4c+3) from the parts above; returns dG = q ⊙ dq − k ⊙ dk.
// qo, qs (= scale·dO Sᵀ · exp(B)) share the factor exp(G_t − B); ko, kv (= V dSᵀ · exp(Γ − E))
// share exp(E − G_t).
fn put_dqk(bh: u32, t0: u32, len: u32, gb: u32, t: u32, c: u32, qo: vec4f, ko: vec4f,
           qd: vec4f, kd: vec4f, qs: vec4f, kv: vec4f, bq: vec4f, eq: vec4f) -> vec4f {
  if (t >= len) { return vec4f(0.0); }
  let g = ld4_g(gb, t, c);
  let dq = fma(exp(g - bq), qo + qs, qd);
  let dk = fma(exp(eq - g), ko + kv, kd);
  let rb = row_base(bh, t0 + t, K);
  let k = 4u * c;
  if (k < K) {
    st2_dq(rb + k, dq.x, dq.y, k + 1u < K);
    st2_dk(rb + k, dk.x, dk.y, k + 1u < K);
  }
  if (k + 2u < K) {
    st2_dq(rb + k + 2u, dq.z, dq.w, k + 3u < K);
    st2_dk(rb + k + 2u, dk.z, dk.w, k + 3u < K);
  }
  return ld4_q(rb, c) * dq - ld4_k(rb, c) * dk;
}

fn put_g(gb: u32, len: u32, t: u32, c: u32, x: vec4f) {
  if (t >= len) { return; }
  for (var j = 0u; j < 4u; j++) {
    if (4u * c + j < K) { wsg[gb + t * K + 4u * c + j] = x[j]; }
  }
}
