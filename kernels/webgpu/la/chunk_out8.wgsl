// la.out = 8 (only with la.state = 4; mode fwd): the outputs without a walk. seg_out5.wgsl walks
// each segment L tokens a step, carrying S and z from step to step, with three barriers a step, and
// 40 % of its multiply-adds update the state. Here the state pass (la.state 4: seg_state3.wgsl
// with SUB) has already stored the state at every sub-chunk start relative to its segment (wsc),
// so sub-chunks are independent (FLA's chunk_fwd_o over chunk_fwd_h's per-chunk states, in
// segmented form):
//   S = S_seg + S_rel, z = z_seg + z_rel (ws: the scan's exclusive prefix over segments, h0/z0
//   included; wsc: the sub-chunk's start inside the segment, none for the first sub-chunk),
//   O = φ(Q)·S + tril(φ(Q)φ(K)ᵀ)·V,  den = φ(Q)·z + rowsum(tril(φ(Q)φ(K)ᵀ)),
//   o = O / (den + 1e-6) when normalizing, else scale·O: seg_out5's math, term for term.
// A workgroup takes G consecutive sub-chunks of one segment (la.out_g, default 16, at most NSUB; a
// segment's last group may be short); grid (⌈NSUB / G⌉, NSEG, heads).
//   1. The prefix (ws: S, and z for lid < K4) is loaded once per workgroup into the K4·V4 state
//      owners' registers (p0…p3, pz); per sub-chunk only its wsc tile is loaded, added and stored
//      to sS (and sZ).
//   2. Software pipelining: right after the barrier that publishes sub-chunk g's operands, every
//      invocation issues the loads of sub-chunk g + 1's q, k, v words (Fetch) and its wsc tile
//      (c0…c3, cz); they are consumed only after g's last barrier, so their latency runs under g's
//      two phases instead of in front of them.
//   3. Barriers: three per sub-chunk (two without normalizing, plus the third whenever another
//      sub-chunk follows, see the loop).
// Roles by invocation index, as in seg_out5: load (every invocation fetches blocks lid and lid + NT
// of the q, k, v tiles; lid < K4·V4 a 4×4 state tile; lid < K4 a block of z); O [L4 × V4] output
// rows 4r…4r+3, columns 4c…4c+3 in four named vec4s; A [L4 × L4] the next L4² score tiles, the
// lower block triangle only; D [L] one denominator row each (when normalizing). Phase 1: O the
// inter term φ(Q)·S, A the scores, D φ(Q)·z; phase 2: O the intra term, D the row sums; o stored
// after the third barrier. Workgroup memory is seg_out5's, padded against bank conflicts (45.5 KiB
// at L = 32, K = V = 64). Per-invocation state stays in named vec4s with constant indices (the v2
// lesson in docs/perf-notes.md).
// History (H100, B1 H8 K=V=64, T=1M bf16, hot; docs/perf-notes.md session 7): version 7 (one
// sub-chunk a workgroup, since deleted) took the out pass from seg_out5's 15.8 to 12.47 ms; a
// sweep of L put ≈ 9.2 ms of that on a fixed cost per workgroup (staging the 16 KiB prefix and 8
// KiB of wsc before the first barrier, 262,144 workgroups). Version 8 stages the prefix once per G
// sub-chunks (at G = 8: 176 against 288 KiB staged per 8 sub-chunks): 10.17 ms at G = 16 (G = 2, 4,
// 8, 32, 64: 11.43, 10.68, 10.32, 10.15, 10.26). The fixed cost went as predicted; the rest (≈ 10
// ms, 10.7 TFLOP/s against WGSL's 43.7 FMA ceiling) did not shrink. On lavapipe it is about 2×
// slower than version 7 was (barriers inside a loop cost more there).
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
override G: u32 = 8;       // sub-chunks per workgroup (la.out_g, at most NSUB)

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

// Where sub-chunk j's state relative to its segment starts in wsc (j ≥ 1; sub-chunks 1…NSUB−1
// of each segment are stored).
fn rel_at(bh: u32, seg: u32, j: u32) -> u32 {
  return ((bh * p.NC + seg) * (NSUB - 1u) + j - 1u) * SLOT;
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let j0 = wid.x * G;  // first sub-chunk of the group
  let seg = wid.y;
  let bh = wid.z;
  let tbeg = seg * SEGT;
  let tend = min(tbeg + SEGT, p.T);
  if (tbeg + j0 * L >= tend) { return; }  // past a short last segment (the whole workgroup)
  // Sub-chunks of this group: G, fewer in a segment's last group or a short last segment.
  let nsub = min(G, min(NSUB, (tend - tbeg + L - 1u) / L) - j0);
  let isO = lid < L4 * V4;
  let r = lid / V4;  // O row block
  let c = lid % V4;  // O column block
  let ai = lid - L4 * V4;
  let isA = lid >= L4 * V4 && ai < L4 * L4;
  let tb = ai / L4;
  let sb = ai % L4;
  let dt = ai - L4 * L4;
  let isD = NORMALIZE && lid >= L4 * V4 + L4 * L4 && dt < L;
  let isS = lid < K4 * V4;
  let kr = lid / V4;  // state row block (state owners)
  let sc = lid % V4;  // state column block
  let isZ = NORMALIZE && lid < K4;

  // The segment's prefix (the scan's exclusive prefix over segments, h0/z0 included), once.
  let base = (bh * p.NC + seg) * (K * V + K);
  var p0 = vec4f(0.0);
  var p1 = vec4f(0.0);
  var p2 = vec4f(0.0);
  var p3 = vec4f(0.0);
  var pz = vec4f(0.0);
  if (isS) {
    p0 = ld_srow(base, 4u * kr, sc);
    p1 = ld_srow(base, 4u * kr + 1u, sc);
    p2 = ld_srow(base, 4u * kr + 2u, sc);
    p3 = ld_srow(base, 4u * kr + 3u, sc);
  }
  if (isZ) { pz = ld_zblk(base, lid); }

  // The first sub-chunk's operands, as raw words and the wsc tile (zero for a segment's first).
  var t0 = tbeg + j0 * L;
  var len = min(L, tend - t0);
  var f = fetch(bh, t0, len, lid);
  var c0 = vec4f(0.0);
  var c1 = vec4f(0.0);
  var c2 = vec4f(0.0);
  var c3 = vec4f(0.0);
  var cz = vec4f(0.0);
  if (j0 > 0u) {
    let rel = rel_at(bh, seg, j0);
    if (isS) {
      let x = rel + 4u * kr * V4 + sc;
      c0 = ld_cs(x);
      c1 = ld_cs(x + V4);
      c2 = ld_cs(x + 2u * V4);
      c3 = ld_cs(x + 3u * V4);
    }
    if (isZ) { cz = ld_cs(rel + 4u * K4 * V4 + lid); }
  }

  for (var g = 0u; g < nsub; g++) {
    // Sub-chunk g's operands into workgroup memory: S = prefix + relative state, φ(q), φ(k), v.
    // Safe against sub-chunk g − 1: its last reads of sQ, sK, sS, sZ precede its second barrier,
    // of sV and sA its third, of sD (its stores) this invocation's own program order before here,
    // and the other invocations write sD only after the barrier below.
    if (isS) {
      let x = 4u * kr * V4 + sc;
      sS[x] = p0 + c0;
      sS[x + V4] = p1 + c1;
      sS[x + 2u * V4] = p2 + c2;
      sS[x + 3u * V4] = p3 + c3;
    }
    if (isZ) { sZ[lid] = pz + cz; }
    if (lid < L * K4) { put_qk(bh, t0, len, lid, f.q0, f.k0); }
    if (lid + NT < L * K4) { put_qk(bh, t0, len, lid + NT, f.q1, f.k1); }
    if (lid < L * V4) { put_v(bh, t0, len, lid, f.v0); }
    if (lid + NT < L * V4) { put_v(bh, t0, len, lid + NT, f.v1); }
    workgroupBarrier();

    // Prefetch sub-chunk g + 1 (f, c0…c3, cz were consumed above): its loads run under this
    // sub-chunk's two phases. t0, len of this sub-chunk are kept for its stores (tc, lc).
    let tc = t0;
    let lc = len;
    if (g + 1u < nsub) {
      let jn = j0 + g + 1u;  // ≥ 1: always has a wsc tile
      t0 = tbeg + jn * L;
      len = min(L, tend - t0);
      f = fetch(bh, t0, len, lid);
      let rel = rel_at(bh, seg, jn);
      if (isS) {
        let x = rel + 4u * kr * V4 + sc;
        c0 = ld_cs(x);
        c1 = ld_cs(x + V4);
        c2 = ld_cs(x + 2u * V4);
        c3 = ld_cs(x + 3u * V4);
      }
      if (isZ) { cz = ld_cs(rel + 4u * K4 * V4 + lid); }
    }

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
    // Also ends sub-chunk g's reads of sQ, sK, sS, sZ before g + 1 writes them.
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
    // Normalizing: publishes sD to the O invocations (the third barrier). Either way, when a
    // sub-chunk follows, it ends this one's reads of sV (and sA) before the next writes sV at the
    // top of the loop (sA is rewritten only after the next first barrier, which this would cover
    // anyway). Uniform: nsub is.
    if (NORMALIZE || g + 1u < nsub) { workgroupBarrier(); }

    if (isO) {
      var inv = vec4f(p.scale);
      if (NORMALIZE) {
        let d = vec4f(sD[4u * r], sD[4u * r + 1u], sD[4u * r + 2u], sD[4u * r + 3u]);
        inv = 1.0 / (d + 1e-6);
      }
      store_o(bh, tc, lc, 4u * r, c, o0 * inv.x);
      store_o(bh, tc, lc, 4u * r + 1u, c, o1 * inv.y);
      store_o(bh, tc, lc, 4u * r + 2u, c, o2 * inv.z);
      store_o(bh, tc, lc, 4u * r + 3u, c, o3 * inv.w);
    }
    // No barrier here: sD, the one buffer these stores read, is next written by the D
    // invocations in g + 1's phase 2, after g + 1's first barrier, which every O invocation
    // reaches only after its stores.
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
