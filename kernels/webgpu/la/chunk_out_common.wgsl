// What la.out 8 and 9 (chunk_out8.wgsl, chunk_out9.wgsl) share: their override constants,
// workgroup memory, the loaders of a sub-chunk's operands (q, k, v as storage words, the segment
// prefix and the sub-chunk's wsc tile) and of workgroup memory, and the output stores. Each
// version's file has its roles and main(); the builder (seg_fwd.ts) puts this file in front.
override L: u32 = 32;       // tokens per sub-chunk (la.cs_len)
override L4: u32 = 8;
override SEGT: u32 = 4096;  // tokens per segment
override NSUB: u32 = 128;   // sub-chunks per segment, ⌈SEGT / L⌉ (a segment's last may be short)
override NT: u32 = 256;     // invocations (the version's roles, see its header)
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

// Output row t0 + t, columns 4c…4c+3, in pairs so that a bf16 word is written whole.
fn store_o(bh: u32, t0: u32, len: u32, t: u32, c: u32, o: vec4f) {
  if (t >= len) { return; }
  let rb = row_base(bh, t0 + t, V);
  let v = 4u * c;
  if (v < V) { st2_o(rb + v, o.x, o.y, v + 1u < V); }
  if (v + 2u < V) { st2_o(rb + v + 2u, o.z, o.w, v + 3u < V); }
}
