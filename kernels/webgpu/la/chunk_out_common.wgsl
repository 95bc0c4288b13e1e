// What la.out 8 and 9 (chunk_out8.wgsl, chunk_out9.wgsl) share beyond seg_tile.wgsl: the loaders
// of the segment prefix and of a sub-chunk's wsc tile, and the staging of a sub-chunk into
// workgroup memory. Each version's file has its roles and main(); the builder (seg_fwd.ts) puts
// seg_tile.wgsl and this file in front.

// Where sub-chunk j's state relative to its segment starts in wsc (j ≥ 1; sub-chunks 1…NSUB−1
// of each segment are stored).
fn rel_at(bh: u32, seg: u32, j: u32) -> u32 {
  return ((bh * p.NC + seg) * (NSUB - 1u) + j - 1u) * SLOT;
}

// Rows 4·kr…4·kr+3, column block sc of a state (r0…r3) and key-sum block lid (z), for the
// invocation that owns them (lid < K4·V4; z for lid < K4 when normalizing), zero elsewhere.
struct Tile4 {
  r0: vec4f,
  r1: vec4f,
  r2: vec4f,
  r3: vec4f,
  z: vec4f,
}

// The segment's prefix at ws slot base (the scan's exclusive prefix over segments, h0/z0
// included).
fn ld_prefix(base: u32, lid: u32) -> Tile4 {
  var t: Tile4;
  let kr = lid / V4;
  let sc = lid % V4;
  if (lid < K4 * V4) {
    t.r0 = ld_srow(base, 4u * kr, sc);
    t.r1 = ld_srow(base, 4u * kr + 1u, sc);
    t.r2 = ld_srow(base, 4u * kr + 2u, sc);
    t.r3 = ld_srow(base, 4u * kr + 3u, sc);
  }
  if (NORMALIZE && lid < K4) { t.z = ld_zblk(base, lid); }
  return t;
}

// Sub-chunk j's state relative to its segment (wsc; zero for the segment's first, j = 0).
fn ld_rel(bh: u32, seg: u32, j: u32, lid: u32) -> Tile4 {
  var t: Tile4;
  if (j == 0u) { return t; }
  let rel = rel_at(bh, seg, j);
  if (lid < K4 * V4) {
    let x = rel + 4u * (lid / V4) * V4 + lid % V4;
    t.r0 = ld_cs(x);
    t.r1 = ld_cs(x + V4);
    t.r2 = ld_cs(x + 2u * V4);
    t.r3 = ld_cs(x + 3u * V4);
  }
  if (NORMALIZE && lid < K4) { t.z = ld_cs(rel + 4u * K4 * V4 + lid); }
  return t;
}

// A sub-chunk's operands into workgroup memory: S = prefix + relative state (and z), φ(q), φ(k),
// v from f (fetch() of the len tokens from t0).
fn stage(bh: u32, t0: u32, len: u32, lid: u32, pre: Tile4, rel: Tile4, f: Fetch) {
  if (lid < K4 * V4) {
    let x = 4u * (lid / V4) * V4 + lid % V4;
    sS[x] = pre.r0 + rel.r0;
    sS[x + V4] = pre.r1 + rel.r1;
    sS[x + 2u * V4] = pre.r2 + rel.r2;
    sS[x + 3u * V4] = pre.r3 + rel.r3;
  }
  if (NORMALIZE && lid < K4) { sZ[lid] = pre.z + rel.z; }
  if (lid < L * K4) { put_qk(bh, t0, len, lid, f.q0, f.k0); }
  if (lid + NT < L * K4) { put_qk(bh, t0, len, lid + NT, f.q1, f.k1); }
  if (lid < L * V4) { put_v(bh, t0, len, lid, f.v0); }
  if (lid + NT < L * V4) { put_v(bh, t0, len, lid + NT, f.v1); }
}
