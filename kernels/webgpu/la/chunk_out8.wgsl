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

  // The segment's prefix, once; the first sub-chunk's operands as raw words and its wsc tile.
  let pre = ld_prefix((bh * p.NC + seg) * (K * V + K), lid);
  var t0 = tbeg + j0 * L;
  var len = min(L, tend - t0);
  var f = fetch(bh, t0, len, lid);
  var rel = ld_rel(bh, seg, j0, lid);

  for (var g = 0u; g < nsub; g++) {
    // Sub-chunk g's operands into workgroup memory: S = prefix + relative state, φ(q), φ(k), v.
    // Safe against sub-chunk g − 1: its last reads of sQ, sK, sS, sZ precede its second barrier,
    // of sV and sA its third, of sD (its stores) this invocation's own program order before here,
    // and the other invocations write sD only after the barrier below.
    stage(bh, t0, len, lid, pre, rel, f);
    workgroupBarrier();

    // Prefetch sub-chunk g + 1 (f and rel were consumed above): its loads run under this
    // sub-chunk's two phases. t0, len of this sub-chunk are kept for its stores (tc, lc).
    let tc = t0;
    let lc = len;
    if (g + 1u < nsub) {
      let jn = j0 + g + 1u;  // ≥ 1: always has a wsc tile
      t0 = tbeg + jn * L;
      len = min(L, tend - t0);
      f = fetch(bh, t0, len, lid);
      rel = ld_rel(bh, seg, jn, lid);
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
