// deltanet backward pass `bwd grad`, v2 (knob deltanet.grad = 2): bwd_grad.wgsl's math, per
// (chunk n, head bh), all chunks in parallel, with T = Ñ diag(β) (Ñ = N with its unit diagonal):
//   dP = scale·tril(dO V_newᵀ); dW = −dV_new Sᵀ; dT = dV_new Vᵀ + dW Knᵀ; dV = Tᵀ dV_new
//   dQ = scale·dO Sᵀ + dP Kn;  dK = dPᵀ Q + V_new dSᵀ + Tᵀ dW + diag(β) dA Kn + (diag(β) dA)ᵀ Kn
//   X = dT Tᵀ; dA = −Ñᵀ X (strictly lower); dβ_i = Σ_r Ñ_ri dT_ri + kn_i · (dA Kn)_i
// then the l2-norm backward on dQ, dK. Every product is a tiled matrix product in workgroup
// memory: two slots of SL vec4s hold the operands as vec4 rows (row-major, or transposed where
// the product reads the operand by columns, so that every product is A·B or Aᵀ·B and each
// invocation reads B along a row: consecutive invocations, consecutive vec4s); each invocation
// owns one 4×4 tile of each output (RT·RT, RT·RK, RT·RV ≤ WG: C, K, V ≤ 64 at WG 256) as named
// vec4s in a struct, so dQ, dK, dP, dT and dW stay in registers between phases and are written
// into a slot only when a later product reads them. Rows past the chunk's end and columns past
// K, V, C are zero in the slots, so only the triangles need masks. No global scratch.
override WG: u32 = 256;
override RT: u32 = 16;    // ⌈C/4⌉
override RK: u32 = 16;    // ⌈K/4⌉
override RV: u32 = 16;    // ⌈V/4⌉
override SL: u32 = 1024;  // vec4s per slot: 4·max(RT, RK, RV)², or the reductions' need

var<workgroup> sm: array<vec4f, 2u * SL>;

var<private> g_bh: u32;
var<private> g_t0: u32;
var<private> g_len: u32;
var<private> g_cb: u32;  // first row of the chunk in [.., C, ·] workspaces
var<private> g_cc: u32;  // the chunk's [C][C] in wsn
var<private> g_sb: u32;  // S before / dS after in wss, wsds

struct Tile4 {
  a: vec4f,
  b: vec4f,
  c: vec4f,
  d: vec4f,
}

fn z4() -> Tile4 {
  return Tile4(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
}

fn neg4(t: Tile4) -> Tile4 {
  return Tile4(-t.a, -t.b, -t.c, -t.d);
}

// The lower triangle of a diagonal 4×4 tile (strict: without its diagonal).
fn tril4(t: Tile4, strict: bool) -> Tile4 {
  if (strict) {
    return Tile4(vec4f(0.0), t.b * vec4f(1.0, 0.0, 0.0, 0.0), t.c * vec4f(1.0, 1.0, 0.0, 0.0),
      t.d * vec4f(1.0, 1.0, 1.0, 0.0));
  }
  return Tile4(t.a * vec4f(1.0, 0.0, 0.0, 0.0), t.b * vec4f(1.0, 1.0, 0.0, 0.0),
    t.c * vec4f(1.0, 1.0, 1.0, 0.0), t.d);
}

// Operands, element (r, c), zero outside the chunk and past the row length.
const SRC_DO = 0u;
const SRC_V = 1u;
const SRC_DVN = 2u;
const SRC_VN = 3u;
const SRC_Q = 4u;
const SRC_KN = 5u;
const SRC_S = 6u;
const SRC_DS = 7u;
const SRC_N = 8u;  // Ñ
const SRC_T = 9u;  // Ñ diag(β)
const SRC_QRAW = 10u;
const SRC_KRAW = 11u;

fn beta_row(r: u32) -> f32 {
  if (r >= g_len) { return 0.0; }
  return ld_beta(beta_at(g_bh, g_t0 + r));
}

fn nt(r: u32, c: u32) -> f32 {
  if (r >= g_len || c > r) { return 0.0; }
  if (r == c) { return 1.0; }
  return wsn[g_cc + r * C + c];
}

fn elem(src: u32, r: u32, c: u32) -> f32 {
  switch src {
    case 6u: {
      if (r >= K || c >= V) { return 0.0; }
      return wss[g_sb + r * V + c];
    }
    case 7u: {
      if (r >= K || c >= V) { return 0.0; }
      return wsds[g_sb + r * V + c];
    }
    case 8u: { return nt(r, c); }
    case 9u: { return nt(r, c) * beta_row(c); }
    default: {}
  }
  if (r >= g_len) { return 0.0; }
  switch src {
    case 0u: {
      if (c >= V) { return 0.0; }
      return ld_do(row_base(g_bh, g_t0 + r, V) + c);
    }
    case 1u: {
      if (c >= V) { return 0.0; }
      return ld_v(row_base(g_bh, g_t0 + r, V) + c);
    }
    case 2u: {
      if (c >= V) { return 0.0; }
      return wsdv[(g_cb + r) * V + c];
    }
    case 3u: {
      if (c >= V) { return 0.0; }
      return wsu[(g_cb + r) * V + c];
    }
    case 4u: {
      if (c >= K) { return 0.0; }
      return wsq[(g_cb + r) * K + c];
    }
    case 5u: {
      if (c >= K) { return 0.0; }
      return wsk[(g_cb + r) * K + c];
    }
    case 10u: {
      if (c >= K) { return 0.0; }
      return ld_q(row_base(g_bh, g_t0 + r, K) + c);
    }
    case 11u: {
      if (c >= K) { return 0.0; }
      return ld_k(row_base(g_bh, g_t0 + r, K) + c);
    }
    default: {}
  }
  return 0.0;
}

fn row4(src: u32, r: u32, c: u32) -> vec4f {
  return vec4f(elem(src, r, c), elem(src, r, c + 1u), elem(src, r, c + 2u), elem(src, r, c + 3u));
}

// Operand `src` (rows × 4·c4n) into the slot at `base` as vec4 rows.
fn load_rm(base: u32, src: u32, rows: u32, c4n: u32, lid: u32) {
  for (var e = lid; e < rows * c4n; e += WG) {
    sm[base + e] = row4(src, e / c4n, 4u * (e % c4n));
  }
}

// Operand `src` (4·j4n rows × lrows columns) transposed into the slot at `base`: row l holds
// column l, as j4n vec4s. Consecutive invocations read consecutive columns of one row.
fn load_tr(base: u32, src: u32, lrows: u32, j4n: u32, lid: u32) {
  for (var e = lid; e < lrows * j4n; e += WG) {
    let l = e % lrows;
    let j4 = e / lrows;
    let j = 4u * j4;
    sm[base + l * j4n + j4] = vec4f(
      elem(src, j, l),
      elem(src, j + 1u, l),
      elem(src, j + 2u, l),
      elem(src, j + 3u, l),
    );
  }
}

fn st_tile(base: u32, stride: u32, i0: u32, n4: u32, t: Tile4) {
  sm[base + i0 * stride + n4] = t.a;
  sm[base + (i0 + 1u) * stride + n4] = t.b;
  sm[base + (i0 + 2u) * stride + n4] = t.c;
  sm[base + (i0 + 3u) * stride + n4] = t.d;
}

// acc + A·B over l4 in [l4a, l4b) for the tile at rows i0…i0+3, columns 4·n4…: A at ao (rows of
// astr vec4s), B at bo (rows of bstr vec4s).
fn mm_ab(
  ao: u32,
  astr: u32,
  bo: u32,
  bstr: u32,
  i0: u32,
  n4: u32,
  l4a: u32,
  l4b: u32,
  acc: Tile4,
) -> Tile4 {
  var o0 = acc.a;
  var o1 = acc.b;
  var o2 = acc.c;
  var o3 = acc.d;
  for (var l4 = l4a; l4 < l4b; l4++) {
    let a0 = sm[ao + i0 * astr + l4];
    let a1 = sm[ao + (i0 + 1u) * astr + l4];
    let a2 = sm[ao + (i0 + 2u) * astr + l4];
    let a3 = sm[ao + (i0 + 3u) * astr + l4];
    let bb = bo + 4u * l4 * bstr + n4;
    let b0 = sm[bb];
    let b1 = sm[bb + bstr];
    let b2 = sm[bb + 2u * bstr];
    let b3 = sm[bb + 3u * bstr];
    o0 = fma(vec4f(a0.w), b3, fma(vec4f(a0.z), b2, fma(vec4f(a0.y), b1, fma(vec4f(a0.x), b0, o0))));
    o1 = fma(vec4f(a1.w), b3, fma(vec4f(a1.z), b2, fma(vec4f(a1.y), b1, fma(vec4f(a1.x), b0, o1))));
    o2 = fma(vec4f(a2.w), b3, fma(vec4f(a2.z), b2, fma(vec4f(a2.y), b1, fma(vec4f(a2.x), b0, o2))));
    o3 = fma(vec4f(a3.w), b3, fma(vec4f(a3.z), b2, fma(vec4f(a3.y), b1, fma(vec4f(a3.x), b0, o3))));
  }
  return Tile4(o0, o1, o2, o3);
}

// acc + Aᵀ·B over l4 in [l4a, l4b) for the tile at rows 4·i4…, columns 4·n4…: A at ao (rows of
// astr vec4s; the tile's rows are A's columns 4·i4…), B at bo (rows of bstr vec4s).
fn mm_atb(
  ao: u32,
  astr: u32,
  bo: u32,
  bstr: u32,
  i4: u32,
  n4: u32,
  l4a: u32,
  l4b: u32,
  acc: Tile4,
) -> Tile4 {
  var o0 = acc.a;
  var o1 = acc.b;
  var o2 = acc.c;
  var o3 = acc.d;
  for (var l4 = l4a; l4 < l4b; l4++) {
    let r = 4u * l4;
    let aa = ao + r * astr + i4;
    let a0 = sm[aa];
    let a1 = sm[aa + astr];
    let a2 = sm[aa + 2u * astr];
    let a3 = sm[aa + 3u * astr];
    let bb = bo + r * bstr + n4;
    let b0 = sm[bb];
    let b1 = sm[bb + bstr];
    let b2 = sm[bb + 2u * bstr];
    let b3 = sm[bb + 3u * bstr];
    o0 = fma(vec4f(a3.x), b3, fma(vec4f(a2.x), b2, fma(vec4f(a1.x), b1, fma(vec4f(a0.x), b0, o0))));
    o1 = fma(vec4f(a3.y), b3, fma(vec4f(a2.y), b2, fma(vec4f(a1.y), b1, fma(vec4f(a0.y), b0, o1))));
    o2 = fma(vec4f(a3.z), b3, fma(vec4f(a2.z), b2, fma(vec4f(a1.z), b1, fma(vec4f(a0.z), b0, o2))));
    o3 = fma(vec4f(a3.w), b3, fma(vec4f(a2.w), b2, fma(vec4f(a1.w), b1, fma(vec4f(a0.w), b0, o3))));
  }
  return Tile4(o0, o1, o2, o3);
}

fn betas4(i0: u32) -> vec4f {
  return vec4f(beta_row(i0), beta_row(i0 + 1u), beta_row(i0 + 2u), beta_row(i0 + 3u));
}

// Four columns (from c0) of row r of the storage-dtype output, as pairs.
fn st_dv_row(r: u32, c0: u32, x: vec4f) {
  if (r >= g_len || c0 >= V) { return; }
  let at = row_base(g_bh, g_t0 + r, V) + c0;
  st2_dv(at, x.x, x.y, c0 + 1u < V);
  if (c0 + 2u < V) { st2_dv(at + 2u, x.z, x.w, c0 + 3u < V); }
}
fn st_dq_row(r: u32, c0: u32, x: vec4f) {
  if (r >= g_len || c0 >= K) { return; }
  let at = row_base(g_bh, g_t0 + r, K) + c0;
  st2_dq(at, x.x, x.y, c0 + 1u < K);
  if (c0 + 2u < K) { st2_dq(at + 2u, x.z, x.w, c0 + 3u < K); }
}
fn st_dk_row(r: u32, c0: u32, x: vec4f) {
  if (r >= g_len || c0 >= K) { return; }
  let at = row_base(g_bh, g_t0 + r, K) + c0;
  st2_dk(at, x.x, x.y, c0 + 1u < K);
  if (c0 + 2u < K) { st2_dk(at + 2u, x.z, x.w, c0 + 3u < K); }
}
fn st_dbeta(r: u32, x: f32) {
  if (r < g_len) { dbeta[beta_at(g_bh, g_t0 + r)] = x; }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  g_bh = wid.y;
  g_t0 = n * C;
  g_len = min(C, p.T - g_t0);
  let ch = g_bh * p.NC + n;
  g_cb = ch * C;
  g_cc = ch * C * C;
  g_sb = ch * K * V;
  let S0 = 0u;
  let S1 = SL;
  let CP = 4u * RT;
  let KP = 4u * RK;
  let VP = 4u * RV;
  // This invocation's tile of a C×K output (ki, kc), of a C×C one (ci, cj), of a C×V one (vi, vc).
  let kt = lid < RT * RK;
  let ki = lid / RK;
  let kc = lid % RK;
  let ct = lid < RT * RT;
  let ci = lid / RT;
  let cj = lid % RT;
  let vt = lid < RT * RV;
  let vi = lid / RV;
  let vc = lid % RV;
  var dq = z4();
  var dk = z4();
  var dp = z4();
  var dt = z4();
  var dw = z4();

  // dP = scale·tril(dO V_newᵀ): slots dO, V_newᵀ.
  load_rm(S0, SRC_DO, CP, RV, lid);
  load_tr(S1, SRC_VN, VP, RT, lid);
  workgroupBarrier();
  if (ct && cj <= ci) {
    let t = mm_ab(S0, RV, S1, RT, 4u * ci, cj, 0u, RV, z4());
    dp = Tile4(p.scale * t.a, p.scale * t.b, p.scale * t.c, p.scale * t.d);
    if (cj == ci) { dp = tril4(dp, false); }
  }
  workgroupBarrier();

  // dQ = scale·dO Sᵀ: slots dO, Sᵀ.
  load_tr(S1, SRC_S, VP, RK, lid);
  workgroupBarrier();
  if (kt) {
    let t = mm_ab(S0, RV, S1, RK, 4u * ki, kc, 0u, RV, z4());
    dq = Tile4(p.scale * t.a, p.scale * t.b, p.scale * t.c, p.scale * t.d);
  }
  workgroupBarrier();

  // dW = −dV_new Sᵀ: slots dV_new, Sᵀ.
  load_rm(S0, SRC_DVN, CP, RV, lid);
  workgroupBarrier();
  if (kt) { dw = neg4(mm_ab(S0, RV, S1, RK, 4u * ki, kc, 0u, RV, z4())); }
  workgroupBarrier();

  // dT = dV_new Vᵀ: slots dV_new, Vᵀ.
  load_tr(S1, SRC_V, VP, RT, lid);
  workgroupBarrier();
  if (ct) { dt = mm_ab(S0, RV, S1, RT, 4u * ci, cj, 0u, RV, z4()); }
  workgroupBarrier();

  // dV = Tᵀ dV_new (T rows r ≥ the tile's rows): slots dV_new, T.
  load_rm(S1, SRC_T, CP, RT, lid);
  workgroupBarrier();
  if (vt) {
    let t = mm_atb(S1, RT, S0, RV, vi, vc, vi, RT, z4());
    let r0 = 4u * vi;
    let c0 = 4u * vc;
    st_dv_row(r0, c0, t.a);
    st_dv_row(r0 + 1u, c0, t.b);
    st_dv_row(r0 + 2u, c0, t.c);
    st_dv_row(r0 + 3u, c0, t.d);
  }
  workgroupBarrier();

  // dK = Tᵀ dW: slots dW, T.
  if (kt) { st_tile(S0, RK, 4u * ki, kc, dw); }
  workgroupBarrier();
  if (kt) { dk = mm_atb(S1, RT, S0, RK, ki, kc, ki, RT, z4()); }
  workgroupBarrier();

  // dT += dW Knᵀ: slots dW, Knᵀ. Then this tile's share of dβ's Σ_r Ñ_ri dT_ri (by column).
  load_tr(S1, SRC_KN, KP, RT, lid);
  workgroupBarrier();
  var db1 = vec4f(0.0);
  if (ct) {
    dt = mm_ab(S0, RK, S1, RT, 4u * ci, cj, 0u, RK, dt);
    let a0 = 4u * ci;
    let b0 = 4u * cj;
    db1 = row4(SRC_N, a0, b0) * dt.a + row4(SRC_N, a0 + 1u, b0) * dt.b +
      row4(SRC_N, a0 + 2u, b0) * dt.c + row4(SRC_N, a0 + 3u, b0) * dt.d;
  }
  workgroupBarrier();

  // dQ += dP Kn (columns j ≤ the tile's rows): slots dP, Kn.
  if (ct) { st_tile(S0, RT, 4u * ci, cj, dp); }
  load_rm(S1, SRC_KN, CP, RK, lid);
  workgroupBarrier();
  if (kt) { dq = mm_ab(S0, RT, S1, RK, 4u * ki, kc, 0u, ki + 1u, dq); }
  workgroupBarrier();

  // dK += dPᵀ Q (rows a ≥ the tile's rows): slots dP, Q.
  load_rm(S1, SRC_Q, CP, RK, lid);
  workgroupBarrier();
  if (kt) { dk = mm_atb(S0, RT, S1, RK, ki, kc, ki, RT, dk); }
  workgroupBarrier();

  // dK += V_new dSᵀ: slots V_new, dSᵀ.
  load_rm(S0, SRC_VN, CP, RV, lid);
  load_tr(S1, SRC_DS, VP, RK, lid);
  workgroupBarrier();
  if (kt) { dk = mm_ab(S0, RV, S1, RK, 4u * ki, kc, 0u, RV, dk); }
  workgroupBarrier();

  // X = dT Tᵀ (columns b ≤ the tile's columns): slots dT, Tᵀ.
  if (ct) { st_tile(S0, RT, 4u * ci, cj, dt); }
  load_tr(S1, SRC_T, CP, RT, lid);
  workgroupBarrier();
  var xx = z4();
  if (ct) { xx = mm_ab(S0, RT, S1, RT, 4u * ci, cj, 0u, cj + 1u, z4()); }
  workgroupBarrier();

  // dA = −Ñᵀ X, strictly lower (rows a ≥ the tile's rows): slots X, Ñ.
  if (ct) { st_tile(S0, RT, 4u * ci, cj, xx); }
  load_rm(S1, SRC_N, CP, RT, lid);
  workgroupBarrier();
  var da = z4();
  if (ct && cj <= ci) {
    da = neg4(mm_atb(S1, RT, S0, RT, ci, cj, ci, RT, z4()));
    if (cj == ci) { da = tril4(da, true); }
  }
  workgroupBarrier();

  // Z = dA Kn (columns j < the tile's rows): dK += diag(β) Z, dβ gets kn_i·Z_i. Slots dA, Kn.
  if (ct) { st_tile(S0, RT, 4u * ci, cj, da); }
  load_rm(S1, SRC_KN, CP, RK, lid);
  workgroupBarrier();
  var db2 = vec4f(0.0);
  if (kt) {
    let i0 = 4u * ki;
    let z = mm_ab(S0, RT, S1, RK, i0, kc, 0u, ki + 1u, z4());
    let b = betas4(i0);
    dk = Tile4(fma(vec4f(b.x), z.a, dk.a), fma(vec4f(b.y), z.b, dk.b), fma(vec4f(b.z), z.c, dk.c),
      fma(vec4f(b.w), z.d, dk.d));
    db2 = vec4f(
      dot(sm[S1 + i0 * RK + kc], z.a),
      dot(sm[S1 + (i0 + 1u) * RK + kc], z.b),
      dot(sm[S1 + (i0 + 2u) * RK + kc], z.c),
      dot(sm[S1 + (i0 + 3u) * RK + kc], z.d),
    );
  }
  workgroupBarrier();

  // dK += Eᵀ Kn with E = diag(β) dA (rows a > the tile's rows): slots E, Kn.
  if (ct) {
    let b = betas4(4u * ci);
    st_tile(S0, RT, 4u * ci, cj, Tile4(b.x * da.a, b.y * da.b, b.z * da.c, b.w * da.d));
  }
  workgroupBarrier();
  if (kt) { dk = mm_atb(S0, RT, S1, RK, ki, kc, ki, RT, dk); }
  workgroupBarrier();

  // Row sums through both slots, each as vec4s over a tile's four rows: q·dq, ‖q_raw‖²,
  // kn·dk, ‖k_raw‖², kn·Z (by column tile) and Σ_r Ñ_ri dT_ri (by row tile of r).
  let NP = RT * RK;
  let on = (p.flags & 1u) != 0u;
  var qv = z4();
  var kv = z4();
  if (kt) {
    let i0 = 4u * ki;
    let k0 = 4u * kc;
    qv = Tile4(row4(SRC_Q, i0, k0), row4(SRC_Q, i0 + 1u, k0), row4(SRC_Q, i0 + 2u, k0),
      row4(SRC_Q, i0 + 3u, k0));
    kv = Tile4(row4(SRC_KN, i0, k0), row4(SRC_KN, i0 + 1u, k0), row4(SRC_KN, i0 + 2u, k0),
      row4(SRC_KN, i0 + 3u, k0));
    var qs = vec4f(0.0);
    var ks = vec4f(0.0);
    if (on) {
      let q0 = row4(SRC_QRAW, i0, k0);
      let q1 = row4(SRC_QRAW, i0 + 1u, k0);
      let q2 = row4(SRC_QRAW, i0 + 2u, k0);
      let q3 = row4(SRC_QRAW, i0 + 3u, k0);
      qs = vec4f(dot(q0, q0), dot(q1, q1), dot(q2, q2), dot(q3, q3));
      let k0v = row4(SRC_KRAW, i0, k0);
      let k1v = row4(SRC_KRAW, i0 + 1u, k0);
      let k2v = row4(SRC_KRAW, i0 + 2u, k0);
      let k3v = row4(SRC_KRAW, i0 + 3u, k0);
      ks = vec4f(dot(k0v, k0v), dot(k1v, k1v), dot(k2v, k2v), dot(k3v, k3v));
    }
    let e = kc * RT + ki;
    sm[e] = vec4f(dot(qv.a, dq.a), dot(qv.b, dq.b), dot(qv.c, dq.c), dot(qv.d, dq.d));
    sm[NP + e] = qs;
    sm[2u * NP + e] = vec4f(dot(kv.a, dk.a), dot(kv.b, dk.b), dot(kv.c, dk.c), dot(kv.d, dk.d));
    sm[3u * NP + e] = ks;
    sm[4u * NP + e] = db2;
  }
  if (ct) { sm[5u * NP + ci * RT + cj] = db1; }
  workgroupBarrier();
  let RR = 5u * NP + RT * RT;
  if (lid < RT) {
    var qd = vec4f(0.0);
    var qs = vec4f(0.0);
    var kd = vec4f(0.0);
    var ks = vec4f(0.0);
    var db = vec4f(0.0);
    for (var c = 0u; c < RK; c++) {
      let e = c * RT + lid;
      qd += sm[e];
      qs += sm[NP + e];
      kd += sm[2u * NP + e];
      ks += sm[3u * NP + e];
      db += sm[4u * NP + e];
    }
    for (var a = 0u; a < RT; a++) { db += sm[5u * NP + a * RT + lid]; }
    let i0 = 4u * lid;
    st_dbeta(i0, db.x);
    st_dbeta(i0 + 1u, db.y);
    st_dbeta(i0 + 2u, db.z);
    st_dbeta(i0 + 3u, db.w);
    sm[RR + 4u * lid] = select(vec4f(0.0), qd, on);
    sm[RR + 4u * lid + 1u] = select(vec4f(1.0), inverseSqrt(qs + 1e-6), on);
    sm[RR + 4u * lid + 2u] = select(vec4f(0.0), kd, on);
    sm[RR + 4u * lid + 3u] = select(vec4f(1.0), inverseSqrt(ks + 1e-6), on);
  }
  workgroupBarrier();

  // The l2-norm backward: dy ← (dy − y·(y·dy))·inv per row, stored as pairs.
  if (kt) {
    let cq = sm[RR + 4u * ki];
    let iq = sm[RR + 4u * ki + 1u];
    let ck = sm[RR + 4u * ki + 2u];
    let ik = sm[RR + 4u * ki + 3u];
    let i0 = 4u * ki;
    let k0 = 4u * kc;
    st_dq_row(i0, k0, (dq.a - qv.a * cq.x) * iq.x);
    st_dq_row(i0 + 1u, k0, (dq.b - qv.b * cq.y) * iq.y);
    st_dq_row(i0 + 2u, k0, (dq.c - qv.c * cq.z) * iq.z);
    st_dq_row(i0 + 3u, k0, (dq.d - qv.d * cq.w) * iq.w);
    st_dk_row(i0, k0, (dk.a - kv.a * ck.x) * ik.x);
    st_dk_row(i0 + 1u, k0, (dk.b - kv.b * ck.y) * ik.y);
    st_dk_row(i0 + 2u, k0, (dk.c - kv.c * ck.z) * ik.z);
    st_dk_row(i0 + 3u, k0, (dk.d - kv.d * ck.w) * ik.w);
  }
}
