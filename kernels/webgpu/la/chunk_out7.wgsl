// la.out = 7 (only with la.state = 4; mode fwd): the outputs without a walk. seg_out5.wgsl walks
// each segment L tokens a step, carrying S and z from step to step, so a segment's 128 steps run
// one after another with three barriers each, and 40 % of its multiply-adds update the state.
// Here seg_state4.wgsl has already stored the state at every sub-chunk start relative to its
// segment (wsc), so each workgroup takes one sub-chunk of L tokens of one head on its own
// (FLA's chunk_fwd_o over chunk_fwd_h's per-chunk states, in segmented form):
//   S = S_seg + S_rel, z = z_seg + z_rel (ws: the scan's exclusive prefix over segments, h0/z0
//   included; wsc: the sub-chunk's start inside the segment, none for the first sub-chunk),
//   O = φ(Q)·S + tril(φ(Q)φ(K)ᵀ)·V,  den = φ(Q)·z + rowsum(tril(φ(Q)φ(K)ᵀ)),
//   o = O / (den + 1e-6) when normalizing, else scale·O: seg_out5's math, term for term.
// Grid (NSUB, NSEG, heads). One sub-chunk per workgroup: sub-chunks share nothing but the
// segment's prefix (ws: 34 MB at 1M, H8, in a 50 MB L2), so a workgroup walking several would only
// queue their load latencies one behind the other, which the other workgroups resident on the
// SM hide anyway; prefetching the next one into registers (seg_out5's way) would add the 16–32
// registers of a state tile to q, k and v, which the v2 lesson (docs/perf-notes.md) warns off.
// Roles by invocation index as in seg_out5, none of them holding state across barriers:
//   load: every invocation fetches blocks lid and lid + NT of the q, k, v tiles (raw words,
//         all in flight together; seg_load.wgsl) and lid < K4·V4 the 4×4 state tile rows
//         4kr…4kr+3, columns 4c…4c+3 (ws + wsc), lid < K4 a block of z;
//   O  [L4 × V4]: lid < L4·V4, output rows 4r…4r+3, columns 4c…4c+3, in four named vec4s;
//   A  [L4 × L4]: the next L4² score tiles, the lower block triangle only;
//   D  [L]: the next L invocations, one denominator row each (when normalizing).
// NT = max(L4·V4 + L4² + L, K4·V4, ⌈L·K4/2⌉, ⌈L·V4/2⌉): 256 at K = V = 64, L = 32. Phase 1:
// O the inter term φ(Q)·S (K4 steps of 16 vec4 FMAs), A the scores, D φ(Q)·z; phase 2: O the
// intra term over the lower block triangle, D the row sums; o stored after a third barrier
// (only when normalizing: the denominators are the one thing read across invocations).
// Per token-head at K = V = 64, L = 32: 4096 + 1152 + 1152 multiply-adds (seg_out5: 10,240 with
// the update). Workgroup memory and its padding against bank conflicts are seg_out5's (sQ rows
// of K4 | 1 vec4s, a vec4 after every 4 rows of sK, sA rows of L4 | 1): 45.5 KiB at L = 32.
override L: u32 = 32;       // tokens per sub-chunk (la.cs_len)
override L4: u32 = 8;
override SEGT: u32 = 4096;  // tokens per segment
override NSUB: u32 = 128;   // sub-chunks per segment, ⌈SEGT / L⌉ (a segment's last may be short)
override NT: u32 = 256;     // invocations (see above)
override K4: u32 = 16;
override V4: u32 = 16;
override NORMALIZE: bool = true;
override QS: u32 = K4 | 1u;  // vec4s per row of sQ
override AS: u32 = L4 | 1u;  // vec4s per row of sA
override SLOT: u32 = 4u * K4 * V4 + K4;  // vec4s per state in wsc: [4·K4][V4], then z [K4]

var<workgroup> sQ: array<vec4f, L * QS>;       // φ(q) [L][QS]
var<workgroup> sK: array<vec4f, L * K4 + L4>;  // φ(k) [L][K4], a vec4 of padding every 4 rows
var<workgroup> sV: array<vec4f, L * V4>;       // v [L][V4]
var<workgroup> sS: array<vec4f, 4u * K4 * V4>; // state at the sub-chunk's start [4·K4][V4]
var<workgroup> sA: array<vec4f, L * AS>;       // masked scores [L][AS] (lower block triangle)
var<workgroup> sZ: array<vec4f, K4>;           // key sum at the sub-chunk's start
var<workgroup> sD: array<f32, L>;              // denominators of the sub-chunk's rows

// Where row s of φ(K) starts in sK.
fn krow(s: u32) -> u32 {
  return s * K4 + s / 4u;
}

// Blocks lid and lid + NT of the q, k (row length K) and v (V) tiles, as loaded.
struct Fetch {
  q0: Raw4,
  q1: Raw4,
  k0: Raw4,
  k1: Raw4,
  v0: Raw4,
  v1: Raw4,
}

// Issues the loads of the blocks lid and lid + NT of the len tokens from t0.
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

// φ(q), φ(k), v of block e from fetch(): into sQ, sK, sV.
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
  let j = wid.x;  // sub-chunk of the segment
  let seg = wid.y;
  let bh = wid.z;
  let tbeg = seg * SEGT;
  let tend = min(tbeg + SEGT, p.T);
  let t0 = tbeg + j * L;
  if (t0 >= tend) { return; }  // past the end of a short last segment (the whole workgroup)
  let len = min(L, tend - t0);
  let isO = lid < L4 * V4;
  let r = lid / V4;  // O row block
  let c = lid % V4;  // O column block
  let ai = lid - L4 * V4;
  let isA = lid >= L4 * V4 && ai < L4 * L4;
  let tb = ai / L4;
  let sb = ai % L4;
  let dt = ai - L4 * L4;
  let isD = NORMALIZE && lid >= L4 * V4 + L4 * L4 && dt < L;

  let f = fetch(bh, t0, len, lid);
  // The state and key sum at t0: the segment's prefix plus, past the first sub-chunk, the sum
  // over the segment's tokens before t0.
  let base = (bh * p.NC + seg) * (K * V + K);
  // wsc holds sub-chunks 1…NSUB−1 of each segment (rel is read only for j > 0).
  let rel = ((bh * p.NC + seg) * (NSUB - 1u) + max(j, 1u) - 1u) * SLOT;
  if (lid < K4 * V4) {
    let kr = lid / V4;
    let sc = lid % V4;
    var s0 = ld_srow(base, 4u * kr, sc);
    var s1 = ld_srow(base, 4u * kr + 1u, sc);
    var s2 = ld_srow(base, 4u * kr + 2u, sc);
    var s3 = ld_srow(base, 4u * kr + 3u, sc);
    if (j > 0u) {
      let x = rel + 4u * kr * V4 + sc;
      s0 += ld_cs(x);
      s1 += ld_cs(x + V4);
      s2 += ld_cs(x + 2u * V4);
      s3 += ld_cs(x + 3u * V4);
    }
    let x = 4u * kr * V4 + sc;
    sS[x] = s0;
    sS[x + V4] = s1;
    sS[x + 2u * V4] = s2;
    sS[x + 3u * V4] = s3;
  }
  if (NORMALIZE && lid < K4) {
    var z = ld_zblk(base, lid);
    if (j > 0u) { z += ld_cs(rel + 4u * K4 * V4 + lid); }
    sZ[lid] = z;
  }
  if (lid < L * K4) { put_qk(bh, t0, len, lid, f.q0, f.k0); }
  if (lid + NT < L * K4) { put_qk(bh, t0, len, lid + NT, f.q1, f.k1); }
  if (lid < L * V4) { put_v(bh, t0, len, lid, f.v0); }
  if (lid + NT < L * V4) { put_v(bh, t0, len, lid + NT, f.v1); }
  workgroupBarrier();

  // Phase 1: inter term (O invocations), scores (A) or φ(q)·z (D).
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

  // Phase 2: intra term over the lower block triangle of the scores (O), row sums (D).
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
  if (NORMALIZE) { workgroupBarrier(); }

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

// Output row t0 + t, columns 4c…4c+3, in pairs so that a bf16 word is written whole.
fn store_o(bh: u32, t0: u32, len: u32, t: u32, c: u32, o: vec4f) {
  if (t >= len) { return; }
  let rb = row_base(bh, t0 + t, V);
  let v = 4u * c;
  if (v < V) { st2_o(rb + v, o.x, o.y, v + 1u < V); }
  if (v + 2u < V) { st2_o(rb + v + 2u, o.z, o.w, v + 3u < V); }
}
