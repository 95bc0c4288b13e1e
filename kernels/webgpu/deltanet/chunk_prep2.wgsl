// deltanet pass 1, v2 (knob deltanet.prep = 2; the segmented forward of mode fwd only): per
// (chunk n, head bh) what chunk_prep.wgsl computes, for seg_sum.wgsl and seg_out.wgsl:
//   q, k l2-normalized per token (when flags & 1); P = tril(Q Kᵀ) → wsp (lower 4×4 tiles only);
//   A = tril(diag(β) K Kᵀ, −1); N = (I + A)⁻¹; W = N diag(β) K → wsw, U = N diag(β) V → wsu;
//   normalized q, k → wsq, wsk. Rows past the sequence end are zero. No wsn (the backward keeps
//   chunk_prep.wgsl).
// Products are 4×4 register tiles fed by vec4 workgroup loads. The inverse is blocked by 16 rows:
// the diagonal blocks by forward substitution one column per invocation (no barriers), then the
// block diagonals d = 1, 2, … as N_ij = −N_ii (Σ_{j≤m<i} L_im N_mj), two barriers per diagonal.
// A sits in sA's strict lower triangle, N's strict lower part transposed in its upper triangle.
override WG: u32 = 256;
override RK: u32 = 16;    // ⌈K/4⌉
override RV: u32 = 16;    // ⌈V/4⌉
override RT: u32 = 16;    // ⌈C/4⌉
override RX: u32 = 16;    // max(RK, RV): vec4s per row of sX
override XS: u32 = 1024;  // vec4s of sX: max(4·RT·RX, the inverse's scratch)
override KSW: u32 = 15;   // sK column swizzle: RK − 1 when RK is a power of two, else 0
override XSW: u32 = 15;   // sX column swizzle: RX − 1 when RX is a power of two, else 0
const BS: u32 = 16u;      // rows per block of the inverse

var<workgroup> sK: array<vec4f, 4u * RT * RK>;  // k rows (normalized), later β·k [4·RT][RK]
var<workgroup> sX: array<vec4f, XS>;            // q rows, then the inverse's scratch, then β·v
var<workgroup> sA: array<f32, C * C>;           // A below the diagonal, Nᵀ above [C][C]

// Swizzled addresses: a vec4 column is XORed with the row's 4-row group (sK, sX), so that
// invocations reading one column of different rows hit different banks. sA is not swizzled: the
// inverse's column reads are conflict-free without it, and a row swizzle measured 3 ms slower on
// the H100 at 1M.
fn ki(t: u32, c4: u32) -> u32 {
  return t * RK + (c4 ^ ((t >> 2u) & KSW));
}
fn xi(t: u32, c4: u32) -> u32 {
  return t * RX + (c4 ^ ((t >> 2u) & XSW));
}
fn ai(r: u32, c: u32) -> u32 {
  return r * C + c;
}

fn ld4q(r: u32, n: u32) -> vec4f {
  var x = vec4f(ld_q(r), 0.0, 0.0, 0.0);
  if (n > 1u) { x.y = ld_q(r + 1u); }
  if (n > 2u) { x.z = ld_q(r + 2u); }
  if (n > 3u) { x.w = ld_q(r + 3u); }
  return x;
}
fn ld4k(r: u32, n: u32) -> vec4f {
  var x = vec4f(ld_k(r), 0.0, 0.0, 0.0);
  if (n > 1u) { x.y = ld_k(r + 1u); }
  if (n > 2u) { x.z = ld_k(r + 2u); }
  if (n > 3u) { x.w = ld_k(r + 3u); }
  return x;
}
fn ld4v(r: u32, n: u32) -> vec4f {
  var x = vec4f(ld_v(r), 0.0, 0.0, 0.0);
  if (n > 1u) { x.y = ld_v(r + 1u); }
  if (n > 2u) { x.z = ld_v(r + 2u); }
  if (n > 3u) { x.w = ld_v(r + 3u); }
  return x;
}

fn dot4(a: vec4f, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) -> vec4f {
  return vec4f(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
}

// Row `row` of N at column c (unit diagonal, zero above), row < C.
fn nat(row: u32, c: u32) -> f32 {
  return select(select(0.0, 1.0, c == row), sA[ai(c, row)], c < row);
}

// Row i of a Gram tile: P's (lower part) to wsp, A's (β_i K Kᵀ, strictly lower) to sA.
fn gram_row(bh: u32, t0: u32, len: u32, cb: u32, i: u32, j0: u32, pq: vec4f, pk: vec4f) {
  if (i >= C) { return; }
  let jc = vec4u(j0) + vec4u(0u, 1u, 2u, 3u);
  st4_wsp((cb + i) * C + j0, min(4u, C - j0), select(vec4f(0.0), pq, jc <= vec4u(i)));
  var b = 0.0;
  if (i < len) { b = ld_beta(beta_at(bh, t0 + i)); }
  let a = b * pk;
  if (j0 < i) { sA[ai(i, j0)] = a.x; }
  if (j0 + 1u < i) { sA[ai(i, j0 + 1u)] = a.y; }
  if (j0 + 2u < i) { sA[ai(i, j0 + 2u)] = a.z; }
  if (j0 + 3u < i) { sA[ai(i, j0 + 3u)] = a.w; }
}

// Row i of a W (isw) or U tile, columns 4·c4…4·c4+3.
fn wu_row(isw: bool, cb: u32, i: u32, c4: u32, o: vec4f) {
  if (i >= C) { return; }
  if (isw) {
    st4_wsw((cb + i) * K + 4u * c4, K - 4u * c4, o);
  } else {
    st4_wsu((cb + i) * V + 4u * c4, V - 4u * c4, o);
  }
}

// x + Σ_{m0≤m<m1} A_rm N_mc (N_mc stored at (c, m)), in four interleaved partial sums so that
// the inverse's dependent chains are a quarter as long.
fn dotA(r: u32, c: u32, m0: u32, m1: u32, x: f32) -> f32 {
  var x0 = x;
  var x1 = 0.0;
  var x2 = 0.0;
  var x3 = 0.0;
  var m = m0;
  for (; m + 3u < m1; m += 4u) {
    x0 = fma(sA[ai(r, m)], sA[ai(c, m)], x0);
    x1 = fma(sA[ai(r, m + 1u)], sA[ai(c, m + 1u)], x1);
    x2 = fma(sA[ai(r, m + 2u)], sA[ai(c, m + 2u)], x2);
    x3 = fma(sA[ai(r, m + 3u)], sA[ai(c, m + 3u)], x3);
  }
  for (; m < m1; m++) { x0 = fma(sA[ai(r, m)], sA[ai(c, m)], x0); }
  return (x0 + x1) + (x2 + x3);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let cb = (bh * p.NC + n) * C;  // first row of this chunk in the [B·H, NC, C, …] workspaces
  let CP = 4u * RT;

  for (var e = lid; e < CP * RK; e += WG) {
    let t = e / RK;
    let c4 = e % RK;
    var q = vec4f(0.0);
    var k = vec4f(0.0);
    if (t < len) {
      let r = row_base(bh, t0 + t, K) + 4u * c4;
      q = ld4q(r, K - 4u * c4);
      k = ld4k(r, K - 4u * c4);
    }
    sX[xi(t, c4)] = q;
    sK[ki(t, c4)] = k;
  }
  workgroupBarrier();
  if ((p.flags & 1u) != 0u) {
    for (var e = lid; e < 2u * CP; e += WG) {
      let t = e % CP;
      let isq = e < CP;
      var ss = 0.0;
      for (var c4 = 0u; c4 < RK; c4++) {
        var x: vec4f;
        if (isq) { x = sX[xi(t, c4)]; } else { x = sK[ki(t, c4)]; }
        ss += dot(x, x);
      }
      let inv = inverseSqrt(ss + 1e-6);
      for (var c4 = 0u; c4 < RK; c4++) {
        if (isq) { sX[xi(t, c4)] *= inv; } else { sK[ki(t, c4)] *= inv; }
      }
    }
    workgroupBarrier();
  }
  for (var e = lid; e < C * RK; e += WG) {
    let t = e / RK;
    let c4 = e % RK;
    let at = (cb + t) * K + 4u * c4;
    st4_wsq(at, K - 4u * c4, sX[xi(t, c4)]);
    st4_wsk(at, K - 4u * c4, sK[ki(t, c4)]);
  }

  // Lower 4×4 tiles (ti ≥ tj) of Q Kᵀ and K Kᵀ, numbered along rows of the tile triangle.
  for (var e = lid; e < RT * (RT + 1u) / 2u; e += WG) {
    var ti = u32((sqrt(8.0 * f32(e) + 1.0) - 1.0) * 0.5);
    if ((ti + 1u) * (ti + 2u) / 2u <= e) { ti++; }
    if (ti * (ti + 1u) / 2u > e) { ti--; }
    let tj = e - ti * (ti + 1u) / 2u;
    let i0 = 4u * ti;
    let j0 = 4u * tj;
    var pq0 = vec4f(0.0);
    var pq1 = vec4f(0.0);
    var pq2 = vec4f(0.0);
    var pq3 = vec4f(0.0);
    var pk0 = vec4f(0.0);
    var pk1 = vec4f(0.0);
    var pk2 = vec4f(0.0);
    var pk3 = vec4f(0.0);
    for (var c4 = 0u; c4 < RK; c4++) {
      let b0 = sK[ki(j0, c4)];
      let b1 = sK[ki(j0 + 1u, c4)];
      let b2 = sK[ki(j0 + 2u, c4)];
      let b3 = sK[ki(j0 + 3u, c4)];
      pq0 += dot4(sX[xi(i0, c4)], b0, b1, b2, b3);
      pq1 += dot4(sX[xi(i0 + 1u, c4)], b0, b1, b2, b3);
      pq2 += dot4(sX[xi(i0 + 2u, c4)], b0, b1, b2, b3);
      pq3 += dot4(sX[xi(i0 + 3u, c4)], b0, b1, b2, b3);
      pk0 += dot4(sK[ki(i0, c4)], b0, b1, b2, b3);
      pk1 += dot4(sK[ki(i0 + 1u, c4)], b0, b1, b2, b3);
      pk2 += dot4(sK[ki(i0 + 2u, c4)], b0, b1, b2, b3);
      pk3 += dot4(sK[ki(i0 + 3u, c4)], b0, b1, b2, b3);
    }
    gram_row(bh, t0, len, cb, i0, j0, pq0, pk0);
    gram_row(bh, t0, len, cb, i0 + 1u, j0, pq1, pk1);
    gram_row(bh, t0, len, cb, i0 + 2u, j0, pq2, pk2);
    gram_row(bh, t0, len, cb, i0 + 3u, j0, pq3, pk3);
  }
  workgroupBarrier();

  // Diagonal blocks: column c of N_bb, x_r = −Σ_{c≤m<r} A_rm x_m (x_c = 1), into sA at (c, r).
  if (lid < C) {
    let c = lid;
    let end = min((c / BS + 1u) * BS, C);
    for (var r = c + 1u; r < end; r++) {
      sA[ai(c, r)] = -dotA(r, c, c + 1u, r, sA[ai(r, c)]);
    }
  }
  workgroupBarrier();
  // Block diagonal d: T = Σ_{j≤m<i} A_im N_mj (block rows i, block column j = i − d) into sX,
  // then N_ij = −N_ii T.
  let NB = (C + BS - 1u) / BS;
  for (var d = 1u; d < NB; d++) {
    let cnt = (NB - d) * BS * BS;
    for (var e = lid; e < cnt; e += WG) {
      let i = d + e / (BS * BS);
      let row = i * BS + (e / BS) % BS;
      let col = (i - d) * BS + e % BS;
      var x = 0.0;
      if (row < C) { x = dotA(row, col, col + 1u, i * BS, sA[ai(row, col)]); }
      sX[e / 4u][e % 4u] = x;
    }
    workgroupBarrier();
    for (var e = lid; e < cnt; e += WG) {
      let i = d + e / (BS * BS);
      let r = (e / BS) % BS;
      let row = i * BS + r;
      let col = (i - d) * BS + e % BS;
      if (row < C) {
        let tb = e - r * BS;  // T's row 0 at this column
        var x0 = sX[e / 4u][e % 4u];
        var x1 = 0.0;
        var s = 0u;
        for (; s + 1u < r; s += 2u) {
          let u = tb + s * BS;
          x0 = fma(sA[ai(i * BS + s, row)], sX[u / 4u][u % 4u], x0);
          let u1 = u + BS;
          x1 = fma(sA[ai(i * BS + s + 1u, row)], sX[u1 / 4u][u1 % 4u], x1);
        }
        if (s < r) {
          let u = tb + s * BS;
          x0 = fma(sA[ai(i * BS + s, row)], sX[u / 4u][u % 4u], x0);
        }
        sA[ai(col, row)] = -(x0 + x1);
      }
    }
    workgroupBarrier();
  }

  // β into the rows of K, β·v rows into sX.
  for (var e = lid; e < CP * RX; e += WG) {
    let t = e / RX;
    let c4 = e % RX;
    var b = 0.0;
    if (t < len) { b = ld_beta(beta_at(bh, t0 + t)); }
    if (c4 < RK) { sK[ki(t, c4)] *= b; }
    var x = vec4f(0.0);
    if (c4 < RV && t < len) { x = b * ld4v(row_base(bh, t0 + t, V) + 4u * c4, V - 4u * c4); }
    sX[xi(t, c4)] = x;
  }
  workgroupBarrier();

  // W = N (βK), U = N (βV): a 4×4 tile per item, W's tiles first, U's with their row blocks in
  // reverse so that an invocation with one of each has about the same work as any other.
  let NW = RT * RK;
  for (var e = lid; e < NW + RT * RV; e += WG) {
    let isw = e < NW;
    var ti: u32;
    var c4: u32;
    if (isw) {
      ti = e / RK;
      c4 = e % RK;
    } else {
      ti = RT - 1u - (e - NW) / RV;
      c4 = (e - NW) % RV;
    }
    let i0 = 4u * ti;
    let r1 = min(i0 + 1u, C - 1u);
    let r2 = min(i0 + 2u, C - 1u);
    let r3 = min(i0 + 3u, C - 1u);
    var o0 = vec4f(0.0);
    var o1 = vec4f(0.0);
    var o2 = vec4f(0.0);
    var o3 = vec4f(0.0);
    for (var c = 0u; c < i0; c++) {
      var b: vec4f;
      if (isw) { b = sK[ki(c, c4)]; } else { b = sX[xi(c, c4)]; }
      o0 = fma(vec4f(sA[ai(c, i0)]), b, o0);
      o1 = fma(vec4f(sA[ai(c, r1)]), b, o1);
      o2 = fma(vec4f(sA[ai(c, r2)]), b, o2);
      o3 = fma(vec4f(sA[ai(c, r3)]), b, o3);
    }
    for (var c = i0; c < min(i0 + 4u, C); c++) {
      var b: vec4f;
      if (isw) { b = sK[ki(c, c4)]; } else { b = sX[xi(c, c4)]; }
      o0 = fma(vec4f(nat(i0, c)), b, o0);
      o1 = fma(vec4f(nat(r1, c)), b, o1);
      o2 = fma(vec4f(nat(r2, c)), b, o2);
      o3 = fma(vec4f(nat(r3, c)), b, o3);
    }
    wu_row(isw, cb, i0, c4, o0);
    wu_row(isw, cb, i0 + 1u, c4, o1);
    wu_row(isw, cb, i0 + 2u, c4, o2);
    wu_row(isw, cb, i0 + 3u, c4, o3);
  }
}
