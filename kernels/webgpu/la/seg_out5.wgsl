// la.out = 5 (the default): seg_out.wgsl's walk (see there for the roles, the per-step math and
// STATES) with four changes, each timed alone on an H100 as la.out 2–5 in session 6 (out pass at
// 1M bf16 28.1 → 22.1 → 20.5 → 16.3 → 15.8 ms; versions 2–4 were deleted after, docs/perf-notes.md):
//  1. loaders (seg_load.wgsl): a step's φ(q), φ(k), v blocks, the ws state rows and key sums as
//     vec4s built from whole loads (two u32 words per block in f16/bf16 where rows have an even
//     length), bounds as selects, no vector component written at a run-time index;
//  2. rows padded against bank conflicts (4-byte banks, 32 of them: 8 vec4s per 128 bytes): the A
//     invocations of a quarter warp read φ(K) rows 4·sb + j for 8 values of sb, 4·K4 vec4s apart,
//     all in the same banks when K4 is even; one vec4 of padding after every 4 rows of sK (row s
//     at s·K4 + s/4) makes that stride odd. The D invocations read 8 consecutive rows of φ(Q) and
//     of the scores at one column: rows of sQ and sA are padded to an odd number of vec4s;
//  3. the next step's q, k, v loaded into registers while this step computes: the step's tiles
//     hold at most 2·NT vec4 blocks each, so every invocation fetches blocks lid and lid + NT of
//     each as storage words (raw4_*, in flight until used) right after the barrier that publishes
//     this step's tiles, and unpacks them (φ, bounds) into the tiles after the step's last barrier
//     and its output stores;
//  4. the state update off the O invocations: the state is owned by the K4·V4 invocations after
//     the L4·V4 O ones (S index lid − L4·V4, the A and D invocations among them) and updated in
//     phase 2, next to the intra term (φ(K) and V stay until the step's last barrier; the state is
//     stored after the update, everyone has read sS by then). Phase 1 is the inter term and the
//     scores (256 vec4 FMAs each at K = V = 64, L = 32), phase 2 the intra term or the update
//     (≤ 128 each): the longest invocation's work per step 512 → 384, for NT = L4·V4 + K4·V4
//     invocations (384). Three barriers per step.
override STATES: bool = false;
// ws slots per segment: 1 in mode fwd; with STATES the chunks per segment (seg_state.wgsl).
override CPS: u32 = 1;
override L: u32 = 32;   // tokens per step
override SEGT: u32 = 4096;  // tokens per segment
override NT: u32 = 384;  // invocations (≥ L4·V4 + K4·V4)
override K4: u32 = 16;
override V4: u32 = 16;
override L4: u32 = 8;
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
  let isO = lid < L4 * V4;
  let r = lid / V4;  // O row block
  let c = lid % V4;  // O column block
  let si = lid - L4 * V4;  // state tile, after the O invocations
  let isS = lid >= L4 * V4 && si < K4 * V4;
  let kr = si / V4;
  let sc = si % V4;
  let ai = lid - L4 * V4;
  let isA = lid >= L4 * V4 && ai < L4 * L4;
  let tb = ai / L4;
  let sb = ai % L4;
  let dt = ai - L4 * L4;
  let isD = NORMALIZE && lid >= L4 * V4 + L4 * L4 && dt < L;

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
    var den = 0.0;
    if (isO) {
      let q = 4u * r * QS;
      for (var k4 = 0u; k4 < K4; k4++) {
        let a0 = sQ[q + k4];
        let a1 = sQ[q + QS + k4];
        let a2 = sQ[q + 2u * QS + k4];
        let a3 = sQ[q + 3u * QS + k4];
        let x = 4u * k4 * V4 + c;
        let b0 = sS[x];
        let b1 = sS[x + V4];
        let b2 = sS[x + 2u * V4];
        let b3 = sS[x + 3u * V4];
        o0 = mac4(o0, a0, b0, b1, b2, b3);
        o1 = mac4(o1, a1, b0, b1, b2, b3);
        o2 = mac4(o2, a2, b0, b1, b2, b3);
        o3 = mac4(o3, a3, b0, b1, b2, b3);
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
      for (var s4 = 0u; s4 <= r; s4++) {
        let a = 4u * r * AS + s4;
        let a0 = sA[a];
        let a1 = sA[a + AS];
        let a2 = sA[a + 2u * AS];
        let a3 = sA[a + 3u * AS];
        let x = 4u * s4 * V4 + c;
        let b0 = sV[x];
        let b1 = sV[x + V4];
        let b2 = sV[x + 2u * V4];
        let b3 = sV[x + 3u * V4];
        o0 = mac4(o0, a0, b0, b1, b2, b3);
        o1 = mac4(o1, a1, b0, b1, b2, b3);
        o2 = mac4(o2, a2, b0, b1, b2, b3);
        o3 = mac4(o3, a3, b0, b1, b2, b3);
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
      if (NORMALIZE) {
        let d = vec4f(sD[4u * r], sD[4u * r + 1u], sD[4u * r + 2u], sD[4u * r + 3u]);
        inv = 1.0 / (d + 1e-6);
      }
      store_o(bh, t0, len, 4u * r, c, o0 * inv.x);
      store_o(bh, t0, len, 4u * r + 1u, c, o1 * inv.y);
      store_o(bh, t0, len, 4u * r + 2u, c, o2 * inv.z);
      store_o(bh, t0, len, 4u * r + 3u, c, o3 * inv.w);
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
