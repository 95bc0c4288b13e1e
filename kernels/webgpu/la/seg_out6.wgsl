// la.out = 6: seg_out5.wgsl with 8×4 output tiles. Each O invocation owns rows 8r…8r+7 (two
// row blocks, 2r and 2r + 1) by columns 4c…4c+3 as eight named vec4 accumulators, so each vec4 of
// S (inter term) or V (intra term) it loads feeds 8 rows instead of 4: per k4 of the inter term 8
// φ(Q) + 4 S loads for 32 vec4 FMAs (seg_out5: 4 + 4 for 16). There are L8·V4 O invocations
// (L8 = ⌈L/8⌉; 64 at K = V = 64, L = 32; seg_out5: 128), then the state, score and denominator
// invocations exactly as in seg_out5 (NT = L8·V4 + K4·V4: 320). Where L is not a multiple of 8
// the last O invocations' second row block is past L: they recompute their first (row
// indices clamped) and store nothing for it. The intra term runs both blocks over score columns
// 0…2r and the second block alone over its diagonal tile 2r + 1. Workgroup memory, barriers,
// prefetch, the score tiles and the state update unchanged.
override STATES: bool = false;
// ws slots per segment: 1 in mode fwd; with STATES the chunks per segment (seg_state.wgsl).
override CPS: u32 = 1;
override L: u32 = 32;   // tokens per step
override SEGT: u32 = 4096;  // tokens per segment
override NT: u32 = 384;  // invocations (≥ L4·V4 + K4·V4)
override K4: u32 = 16;
override V4: u32 = 16;
override L4: u32 = 8;
override L8: u32 = (L + 7u) / 8u;  // O row blocks of 8 rows
override NORMALIZE: bool = true;
override QS: u32 = K4 | 1u;  // vec4s per row of sQ
override AS: u32 = L4 | 1u;  // vec4s per row of sA

var<workgroup> sQ: array<vec4f, L * QS>;       // φ(q) [L][QS]
var<workgroup> sK: array<vec4f, L * K4 + L4>;  // φ(k) [L][K4], a vec4 of padding every 4 rows
var<workgroup> sV: array<vec4f, L * V4>;       // v [L][V4]
var<workgroup> sS: array<vec4f, 4u * K4 * V4>; // state before the step [4·K4][V4]
var<workgroup> sA: array<vec4f, L * AS>;       // masked scores [L][AS] (lower block triangle)
var<workgroup> sZ: array<vec4f, K4>;           // key sum before the step
var<workgroup> sD: array<f32, L>;              // denominators of the step's rows

// Where row s of φ(K) starts in sK.
fn krow(s: u32) -> u32 {
  return s * K4 + s / 4u;
}

// Blocks lid and lid + NT of a step's q, k (row length K) and v (V) tiles, as loaded.
struct Fetch {
  q0: Raw4,
  q1: Raw4,
  k0: Raw4,
  k1: Raw4,
  v0: Raw4,
  v1: Raw4,
}

// Issues the loads of the blocks lid and lid + NT of the step of len tokens from t0.
fn fetch(bh: u32, t0: u32, len: u32, lid: u32) -> Fetch {
  var f: Fetch;
  if (lid < L * K4) {
    let b = blk(bh, t0, len, lid, K4, K);
    f.q0 = raw4_q(b.i, b.n);
    f.k0 = raw4_k(b.i, b.n);
  }
  if (lid + NT < L * K4) {
    let b = blk(bh, t0, len, lid + NT, K4, K);
    f.q1 = raw4_q(b.i, b.n);
    f.k1 = raw4_k(b.i, b.n);
  }
  if (lid < L * V4) {
    let b = blk(bh, t0, len, lid, V4, V);
    f.v0 = raw4_v(b.i, b.n);
  }
  if (lid + NT < L * V4) {
    let b = blk(bh, t0, len, lid + NT, V4, V);
    f.v1 = raw4_v(b.i, b.n);
  }
  return f;
}

// φ(q), φ(k), v of block e of the step from fetch(): into sQ, sK, sV.
fn put_qk(bh: u32, t0: u32, len: u32, e: u32, q: Raw4, k: Raw4) {
  let b = blk(bh, t0, len, e, K4, K);
  let s = e / K4;
  let d4 = e % K4;
  sQ[s * QS + d4] = cook_q(q, b);
  sK[krow(s) + d4] = cook_k(k, b);
}
fn put_v(bh: u32, t0: u32, len: u32, e: u32, v: Raw4) {
  sV[e] = cook_v(v, blk(bh, t0, len, e, V4, V));
}

// o + a.x·b0 + a.y·b1 + a.z·b2 + a.w·b3: one row of a 4×4 tile times a 4-deep slab.
fn mac4(o: vec4f, a: vec4f, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) -> vec4f {
  return fma(vec4f(a.w), b3, fma(vec4f(a.z), b2, fma(vec4f(a.y), b1, fma(vec4f(a.x), b0, o))));
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let seg = wid.x;
  let bh = wid.y;
  let tbeg = seg * SEGT;
  let tend = min(tbeg + SEGT, p.T);
  let base = (bh * p.NC + seg * CPS) * (K * V + K);
  let NO = L8 * V4;  // O invocations
  let isO = lid < NO;
  let r = lid / V4;  // O row block of 8 rows: 4-row blocks 2r and hb
  let c = lid % V4;  // O column block
  // The second 4-row block: 2r + 1, or 2r again (recomputed, not stored) where that is past L.
  let hb = min(2u * r + 1u, L4 - 1u);
  let si = lid - NO;  // state tile, after the O invocations
  let isS = lid >= NO && si < K4 * V4;
  let kr = si / V4;
  let sc = si % V4;
  let ai = lid - NO;
  let isA = lid >= NO && ai < L4 * L4;
  let tb = ai / L4;
  let sb = ai % L4;
  let dt = ai - L4 * L4;
  let isD = NORMALIZE && lid >= NO + L4 * L4 && dt < L;

  // Seed the state from the prefix before this segment.
  var s0 = vec4f(0.0);
  var s1 = vec4f(0.0);
  var s2 = vec4f(0.0);
  var s3 = vec4f(0.0);
  if (isS) {
    s0 = ld_srow(base, 4u * kr, sc);
    s1 = ld_srow(base, 4u * kr + 1u, sc);
    s2 = ld_srow(base, 4u * kr + 2u, sc);
    s3 = ld_srow(base, 4u * kr + 3u, sc);
    store_state(kr, sc, s0, s1, s2, s3);
  }
  if (lid < K4) { sZ[lid] = ld_zblk(base, lid); }

  var f = fetch(bh, tbeg, min(L, tend - tbeg), lid);
  for (var t0 = tbeg; t0 < tend; t0 += L) {
    let len = min(L, tend - t0);
    // This step's tiles from the registers; the previous step's last barrier is behind us.
    if (lid < L * K4) { put_qk(bh, t0, len, lid, f.q0, f.k0); }
    if (lid + NT < L * K4) { put_qk(bh, t0, len, lid + NT, f.q1, f.k1); }
    if (lid < L * V4) { put_v(bh, t0, len, lid, f.v0); }
    if (lid + NT < L * V4) { put_v(bh, t0, len, lid + NT, f.v1); }
    // S (registers) and z (sZ, this invocation's own entry) are those before this step.
    if (STATES && t0 != tbeg && (t0 - tbeg) % C == 0u) {
      let at = base + (t0 - tbeg) / C * (K * V + K);
      if (isS) {
        st_srow(at, 4u * kr, sc, s0);
        st_srow(at, 4u * kr + 1u, sc, s1);
        st_srow(at, 4u * kr + 2u, sc, s2);
        st_srow(at, 4u * kr + 3u, sc, s3);
      }
      if (lid < K4) { st_zblk(at, lid, sZ[lid]); }
    }
    workgroupBarrier();
    if (t0 + L < tend) { f = fetch(bh, t0 + L, min(L, tend - t0 - L), lid); }

    // Phase 1: inter-step term (O invocations) or scores (A invocations).
    var o0 = vec4f(0.0);
    var o1 = vec4f(0.0);
    var o2 = vec4f(0.0);
    var o3 = vec4f(0.0);
    var o4 = vec4f(0.0);
    var o5 = vec4f(0.0);
    var o6 = vec4f(0.0);
    var o7 = vec4f(0.0);
    var den = 0.0;
    if (isO) {
      let q = 8u * r * QS;
      let qb = 4u * hb * QS;
      for (var k4 = 0u; k4 < K4; k4++) {
        let x = 4u * k4 * V4 + c;
        let b0 = sS[x];
        let b1 = sS[x + V4];
        let b2 = sS[x + 2u * V4];
        let b3 = sS[x + 3u * V4];
        o0 = mac4(o0, sQ[q + k4], b0, b1, b2, b3);
        o1 = mac4(o1, sQ[q + QS + k4], b0, b1, b2, b3);
        o2 = mac4(o2, sQ[q + 2u * QS + k4], b0, b1, b2, b3);
        o3 = mac4(o3, sQ[q + 3u * QS + k4], b0, b1, b2, b3);
        o4 = mac4(o4, sQ[qb + k4], b0, b1, b2, b3);
        o5 = mac4(o5, sQ[qb + QS + k4], b0, b1, b2, b3);
        o6 = mac4(o6, sQ[qb + 2u * QS + k4], b0, b1, b2, b3);
        o7 = mac4(o7, sQ[qb + 3u * QS + k4], b0, b1, b2, b3);
      }
    } else if (isD) {
      for (var k4 = 0u; k4 < K4; k4++) { den += dot(sQ[dt * QS + k4], sZ[k4]); }
    } else if (isA && sb <= tb) {
      let q = 4u * tb * QS;
      let k = krow(4u * sb);
      var a0 = vec4f(0.0);
      var a1 = vec4f(0.0);
      var a2 = vec4f(0.0);
      var a3 = vec4f(0.0);
      for (var k4 = 0u; k4 < K4; k4++) {
        let x0 = sQ[q + k4];
        let x1 = sQ[q + QS + k4];
        let x2 = sQ[q + 2u * QS + k4];
        let x3 = sQ[q + 3u * QS + k4];
        let y0 = sK[k + k4];
        let y1 = sK[k + K4 + k4];
        let y2 = sK[k + 2u * K4 + k4];
        let y3 = sK[k + 3u * K4 + k4];
        a0 += vec4f(dot(x0, y0), dot(x0, y1), dot(x0, y2), dot(x0, y3));
        a1 += vec4f(dot(x1, y0), dot(x1, y1), dot(x1, y2), dot(x1, y3));
        a2 += vec4f(dot(x2, y0), dot(x2, y1), dot(x2, y2), dot(x2, y3));
        a3 += vec4f(dot(x3, y0), dot(x3, y1), dot(x3, y2), dot(x3, y3));
      }
      // Inclusive causal mask; only the diagonal tile has entries above it. Rows and columns
      // past len are zero already (zero-filled φ(q), φ(k)).
      if (sb == tb) {
        a0 *= vec4f(1.0, 0.0, 0.0, 0.0);
        a1 *= vec4f(1.0, 1.0, 0.0, 0.0);
        a2 *= vec4f(1.0, 1.0, 1.0, 0.0);
      }
      let w = 4u * tb * AS + sb;
      sA[w] = a0;
      sA[w + AS] = a1;
      sA[w + 2u * AS] = a2;
      sA[w + 3u * AS] = a3;
    }
    workgroupBarrier();

    // Phase 2: intra-step term over the lower block triangle of the scores (O invocations); the
    // state update and the state and key sum for the next step into workgroup memory (everyone
    // has read them by now).
    if (isO) {
      let a = 8u * r * AS;
      let ab = 4u * hb * AS;
      for (var s4 = 0u; s4 <= 2u * r; s4++) {
        let x = 4u * s4 * V4 + c;
        let b0 = sV[x];
        let b1 = sV[x + V4];
        let b2 = sV[x + 2u * V4];
        let b3 = sV[x + 3u * V4];
        o0 = mac4(o0, sA[a + s4], b0, b1, b2, b3);
        o1 = mac4(o1, sA[a + AS + s4], b0, b1, b2, b3);
        o2 = mac4(o2, sA[a + 2u * AS + s4], b0, b1, b2, b3);
        o3 = mac4(o3, sA[a + 3u * AS + s4], b0, b1, b2, b3);
        o4 = mac4(o4, sA[ab + s4], b0, b1, b2, b3);
        o5 = mac4(o5, sA[ab + AS + s4], b0, b1, b2, b3);
        o6 = mac4(o6, sA[ab + 2u * AS + s4], b0, b1, b2, b3);
        o7 = mac4(o7, sA[ab + 3u * AS + s4], b0, b1, b2, b3);
      }
      // The second block's diagonal tile (the first block's tile there is above the diagonal).
      if (hb > 2u * r) {
        let x = 4u * hb * V4 + c;
        let b0 = sV[x];
        let b1 = sV[x + V4];
        let b2 = sV[x + 2u * V4];
        let b3 = sV[x + 3u * V4];
        o4 = mac4(o4, sA[ab + hb], b0, b1, b2, b3);
        o5 = mac4(o5, sA[ab + AS + hb], b0, b1, b2, b3);
        o6 = mac4(o6, sA[ab + 2u * AS + hb], b0, b1, b2, b3);
        o7 = mac4(o7, sA[ab + 3u * AS + hb], b0, b1, b2, b3);
      }
    } else if (isD) {
      for (var s4 = 0u; s4 <= dt / 4u; s4++) { den += dot(sA[dt * AS + s4], vec4f(1.0)); }
      sD[dt] = den;
    }
    if (isS) {
      for (var s = 0u; s < L; s++) {
        let kk = sK[krow(s) + kr];
        let vv = sV[s * V4 + sc];
        s0 = fma(vec4f(kk.x), vv, s0);
        s1 = fma(vec4f(kk.y), vv, s1);
        s2 = fma(vec4f(kk.z), vv, s2);
        s3 = fma(vec4f(kk.w), vv, s3);
      }
      store_state(kr, sc, s0, s1, s2, s3);
    }
    if ((NORMALIZE || STATES) && lid < K4) {
      var z = sZ[lid];
      for (var s = 0u; s < L; s++) { z += sK[krow(s) + lid]; }
      sZ[lid] = z;
    }
    workgroupBarrier();

    if (isO) {
      var inv = vec4f(p.scale);
      var invb = vec4f(p.scale);
      let t = 8u * r;
      let tb1 = 4u * hb;
      if (NORMALIZE) {
        let d = vec4f(sD[t], sD[t + 1u], sD[t + 2u], sD[t + 3u]);
        let db = vec4f(sD[tb1], sD[tb1 + 1u], sD[tb1 + 2u], sD[tb1 + 3u]);
        inv = 1.0 / (d + 1e-6);
        invb = 1.0 / (db + 1e-6);
      }
      store_o(bh, t0, len, t, c, o0 * inv.x);
      store_o(bh, t0, len, t + 1u, c, o1 * inv.y);
      store_o(bh, t0, len, t + 2u, c, o2 * inv.z);
      store_o(bh, t0, len, t + 3u, c, o3 * inv.w);
      // Rows t + 4… (not 4·hb…): past L, hence len, where the second block was clamped.
      store_o(bh, t0, len, t + 4u, c, o4 * invb.x);
      store_o(bh, t0, len, t + 5u, c, o5 * invb.y);
      store_o(bh, t0, len, t + 6u, c, o6 * invb.z);
      store_o(bh, t0, len, t + 7u, c, o7 * invb.w);
    }
  }
}

fn store_state(kr: u32, c: u32, s0: vec4f, s1: vec4f, s2: vec4f, s3: vec4f) {
  let x = 4u * kr * V4 + c;
  sS[x] = s0;
  sS[x + V4] = s1;
  sS[x + 2u * V4] = s2;
  sS[x + 3u * V4] = s3;
}

// Output row t0 + t, columns 4c…4c+3, in pairs so that a bf16 word is written whole.
fn store_o(bh: u32, t0: u32, len: u32, t: u32, c: u32, o: vec4f) {
  if (t >= len) { return; }
  let rb = row_base(bh, t0 + t, V);
  let v = 4u * c;
  if (v < V) { st2_o(rb + v, o.x, o.y, v + 1u < V); }
  if (v + 2u < V) { st2_o(rb + v + 2u, o.z, o.w, v + 3u < V); }
}
