// la.out = 9 (with la.state = 4; mode fwd): chunk_out8.wgsl's math and sub-chunk loop (see
// there) on 13 warps instead of 8. Why: on the H100 through Vulkan a pipeline gets ≈ 50 KiB of
// workgroup memory an SM (two workgroups of 24 KiB fit an SM, two of 26 KiB do not: session 8's
// occupancy sweeps in docs/perf-notes.md), so version 8 (46.6 KiB) runs one workgroup an SM, and
// its phases are as slow as the busiest SM sub-partition: in phase 1 two of the four held both an
// O warp (the inter term, 1,024 FMAs a lane) and an A warp (16 score tiles' worth of dot products
// with 36 of 64 lanes active), and in phase 2 the warp of the last O rows ran 8 steps while the
// first ran 2. Removing any one of inter, scores or intra saved ≈ 1.8 of 10.1 ms.
// Here, with the same workgroup memory:
//   O (2·L4·V4 invocations, two groups h = 0, 1 of L4·V4): each group computes the same [L × V]
//     output tiles (rows 4r…4r+3, columns 4c…4c+3) over half of the depth: the inter term over
//     k4 in its half of 0…K4, the intra term over its half of the score blocks s4 ≤ r. Group 1
//     hands its partial sums to group 0 through sS (dead after phase 1), into exactly the slots
//     the receiving invocation stages itself next (so that no fourth barrier is needed: needs
//     L4 ≤ K4, every group-0 invocation a state owner).
//   A (L/2 · L4 invocations): 2×4 score tiles (rows 2i, 2i+1, columns 4j…4j+3), j ≤ i/2,
//     spread over four warps instead of 4×4 tiles on two.
//   D (L when normalizing): as in version 8.
// Barriers: three per sub-chunk, always (the third now also publishes the partial sums).
// H100, 1M, out pass, 8 → 9 (docs/perf-notes.md session 8): bf16 10.40 → 9.57 ms, f16 10.28 →
// 9.82, f32 10.19 → 9.99; scores as fma chains (dacc) −0.05…−0.07 ms. Tried and slower: the D role
// on A invocations in phase 2 (+1.6 ms), wsc prefetched as raw words, constant-trip loops, D's sums
// as vector accumulations.

// a + x·y as one chain of fmas.
fn dacc(a: f32, x: vec4f, y: vec4f) -> f32 {
  return fma(x.w, y.w, fma(x.z, y.z, fma(x.y, y.y, fma(x.x, y.x, a))));
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
  let OG = L4 * V4;         // invocations of one O group
  let isO = lid < 2u * OG;
  let h = lid / OG;           // O group: 0 or 1
  let ol = lid % OG;
  let r = ol / V4;            // O row block
  let c = ol % V4;            // O column block
  let KH = (K4 + 1u) / 2u;    // group 0's share of the depth (vec4s)
  let k4lo = select(0u, KH, h == 1u);
  let k4hi = select(KH, K4, h == 1u);
  let sm = (r + 2u) / 2u;     // group 0 takes score blocks s4 < sm, group 1 sm…r
  let s4lo = select(0u, sm, h == 1u);
  let s4hi = select(sm, r + 1u, h == 1u);
  let ai = lid - 2u * OG;
  let isA = lid >= 2u * OG && ai < (L / 2u) * L4;
  let tp = ai / L4;           // A row pair: rows 2·tp, 2·tp + 1
  let sb = ai % L4;           // A column block
  let dt = ai - (L / 2u) * L4;
  let isD = NORMALIZE && lid >= 2u * OG + (L / 2u) * L4 && dt < L;

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
      for (var k4 = k4lo; k4 < k4hi; k4++) {
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
    } else if (isA && sb <= tp / 2u) {
      let q = 2u * tp * QS;
      let k = krow(4u * sb);
      var a0 = vec4f(0.0);
      var a1 = vec4f(0.0);
      for (var k4 = 0u; k4 < K4; k4++) {
        let x0 = sQ[q + k4];
        let x1 = sQ[q + QS + k4];
        let y0 = sK[k + k4];
        let y1 = sK[k + K4 + k4];
        let y2 = sK[k + 2u * K4 + k4];
        let y3 = sK[k + 3u * K4 + k4];
        a0 = vec4f(dacc(a0.x, x0, y0), dacc(a0.y, x0, y1), dacc(a0.z, x0, y2), dacc(a0.w, x0, y3));
        a1 = vec4f(dacc(a1.x, x1, y0), dacc(a1.y, x1, y1), dacc(a1.z, x1, y2), dacc(a1.w, x1, y3));
      }
      // Inclusive causal mask on the diagonal block: row 2·tp is row (2·tp) % 4 of its block.
      // Rows and columns past len are zero already (zero-filled φ(q), φ(k)).
      if (sb == tp / 2u) {
        let ri = (2u * tp) % 4u;
        let col = vec4u(0u, 1u, 2u, 3u);
        a0 = select(vec4f(0.0), a0, col <= vec4u(ri));
        a1 = select(vec4f(0.0), a1, col <= vec4u(ri + 1u));
      }
      let w = 2u * tp * AS + sb;
      sA[w] = a0;
      sA[w + AS] = a1;
    }
    // Also ends sub-chunk g's reads of sQ, sK, sS, sZ before g + 1 writes them.
    workgroupBarrier();

    // Phase 2: intra term over the lower block triangle of the scores (O), row sums (D).
    if (isO) {
      for (var s4 = s4lo; s4 < s4hi; s4++) {
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
    // Group 1's partial sums to its group-0 partner (invocation ol), into the sS slots that
    // partner stages for the next sub-chunk (state tile ol: rows 4·(ol / V4)…, column block
    // ol % V4); sS was last read in phase 1, before the second barrier.
    if (isO && h == 1u) {
      let x = 4u * r * V4 + c;
      sS[x] = o0;
      sS[x + V4] = o1;
      sS[x + 2u * V4] = o2;
      sS[x + 3u * V4] = o3;
    }
    // Publishes the partial sums and sD to group 0, and ends this sub-chunk's reads of sV and
    // sA before the next writes them.
    workgroupBarrier();

    if (isO && h == 0u) {
      let x = 4u * r * V4 + c;
      o0 += sS[x];
      o1 += sS[x + V4];
      o2 += sS[x + 2u * V4];
      o3 += sS[x + 3u * V4];
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
    // No barrier here: group 0 reads sS and sD above; sS's slots it read are next written by
    // this same invocation (it stages them at the top of the loop), and sD by the D invocations
    // in g + 1's phase 2, after g + 1's first barrier, which every invocation reaches only after
    // this.
  }
}
