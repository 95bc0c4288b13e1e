// la.state = 3 (the default): seg_state.wgsl (see there) with two changes, each timed alone on an
// H100 as la.state 2 and 3 in session 6 (state pass at 1M bf16 6.49 → 5.35 → 4.09 ms; version 2
// was deleted after):
//  1. the loaders of seg_load.wgsl: a tile's φ(k) and v blocks built from whole loads (two u32
//     words per block in f16/bf16 where rows have an even length), bounds as selects, and the
//     state rows and key sum stored, all without vector components written or read at a run-time
//     index;
//  2. the next tile's k and v loaded into registers while this tile computes (as seg_out5.wgsl):
//     a tile holds at most 2·NT vec4 blocks of each (the planner's NT ≥ ⌈TT·K4 / 2⌉,
//     ⌈TT·V4 / 2⌉), so every invocation fetches blocks lid and lid + NT of each as storage words
//     (raw4_*, in flight until used) right after the barrier that publishes this tile, and after
//     the tile's last barrier unpacks them (φ, bounds) into sK, sV. Two barriers per tile.
// la.state = 4 (only with la.out = 8; mode fwd) is this pass with SUB: it also stores the running
// sums at every sub-chunk boundary inside the segment, so that chunk_out8.wgsl needs no walk
// (FLA's chunk_fwd_h, relative to the segment start: the scan over segments runs after this
// pass). Sub-chunk j ≥ 1 of a segment (L tokens each, la.cs_len; L a multiple of TT, so every
// boundary ends a tile) gets Σ φ(k)ᵀv and Σ φ(k) over the segment's tokens before it, in wsc
// [heads][NSEG][NSUB − 1][SLOT vec4s]: the state as [4·K4][V4] vec4s (rows and columns past K, V
// hold zeros), then z as K4 vec4s. Sub-chunk 0's is zero and not stored. Each store is the owning
// invocation's registers after the tile's FMAs (no extra barrier); st_cs (seg_fwd.ts csSource)
// keeps a vec4 as f32, or as four bf16 rounded to nearest even in two words when the inputs are
// bf16 (as FLA keeps h in the input dtype; la.cs_f32 = 1 forces f32). At K = V = 64, L = 32 that
// adds 8,320 bytes (bf16) per 32 tokens of a head to the pass's reads of 8,192: 2.2 GB of writes
// at 1M, H8. The segment totals go to ws either way.
override TT: u32 = 32;  // tokens per workgroup-memory tile
override SEGT: u32 = 4096;  // tokens per segment
override NT: u32 = 256;  // invocations (≥ K4·V4, ≥ K4, ≥ ⌈TT·K4 / 2⌉, ≥ ⌈TT·V4 / 2⌉)
override K4: u32 = 16;
override V4: u32 = 16;
// ws slots per segment: 1 in mode fwd; with STATES the chunks per segment (seg_state.wgsl).
override CPS: u32 = 1;
override SUB: bool = false;  // la.state 4: the sub-chunk sums into wsc (above)
override L: u32 = 32;        // with SUB: tokens per sub-chunk (TT divides it)
override NSUB: u32 = 128;    // with SUB: sub-chunks per segment, ⌈SEGT / L⌉
override SLOT: u32 = 4u * K4 * V4 + K4;  // with SUB: vec4s per state in wsc
// Row blocks (of 4 state rows) an invocation owns: 1 or 2 (la.state_rb; ⌈K4 / RB⌉·V4 owners of
// 4·RB × 4 tiles, RB + 1 workgroup-memory loads for 16·RB FMAs a token). 16×4 tiles lost on the
// H100 (session 9) and were removed.
override RB: u32 = 1;
// The key sum from partial sums kept by the invocations that build sK (la.state_zc): each
// invocation adds the φ(k) blocks it stages (lid and lid + NT: one row block when K4 divides NT)
// to its own sum, and at a sub-chunk boundary and at the end the NT / K4 sums of a row block meet
// in sZ (ZN = NT entries) after the tile's first barrier. Otherwise (ZN = 1) 16 invocations of
// warp 0 sum the tile's rows of sK after its FMAs, a serial chain the other warps wait for at the
// second barrier.
override ZN: u32 = 1;

var<workgroup> sK: array<vec4f, TT * K4>;  // φ(k) [TT][K4]
var<workgroup> sV: array<vec4f, TT * V4>;  // v [TT][V4]
var<workgroup> sZ: array<vec4f, ZN>;  // with ZN = NT: the invocations' key sums

// Blocks lid and lid + NT of a tile's k (row length K) and v (V) tiles, as loaded.
struct Fetch {
  k0: Raw4,
  k1: Raw4,
  v0: Raw4,
  v1: Raw4,
}

// Issues the loads of the blocks lid and lid + NT of the tile of len tokens from t0.
fn fetch(bh: u32, t0: u32, len: u32, lid: u32) -> Fetch {
  var f: Fetch;
  if (lid < TT * K4) {
    let b = blk(bh, t0, len, lid, K4, K);
    f.k0 = raw4_k(b.i, b.n);
  }
  if (lid + NT < TT * K4) {
    let b = blk(bh, t0, len, lid + NT, K4, K);
    f.k1 = raw4_k(b.i, b.n);
  }
  if (lid < TT * V4) {
    let b = blk(bh, t0, len, lid, V4, V);
    f.v0 = raw4_v(b.i, b.n);
  }
  if (lid + NT < TT * V4) {
    let b = blk(bh, t0, len, lid + NT, V4, V);
    f.v1 = raw4_v(b.i, b.n);
  }
  return f;
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let seg = wid.x;
  let bh = wid.y;
  let tbeg = seg * SEGT;
  let tend = min(tbeg + SEGT, p.T);
  let isS = lid < (K4 + RB - 1u) / RB * V4;
  let kr = RB * (lid / V4);  // the first row block owned
  let c = lid % V4;
  // RB 2's second row block; past K4 (odd K4) it repeats the last one and is never stored.
  let kr1 = min(kr + 1u, K4 - 1u);
  let has1 = RB == 2u && kr + 1u < K4;
  var s0 = vec4f(0.0);
  var s1 = vec4f(0.0);
  var s2 = vec4f(0.0);
  var s3 = vec4f(0.0);
  var s4 = vec4f(0.0);
  var s5 = vec4f(0.0);
  var s6 = vec4f(0.0);
  var s7 = vec4f(0.0);
  var z = vec4f(0.0);
  var f = fetch(bh, tbeg, min(TT, tend - tbeg), lid);
  var zp = vec4f(0.0);
  for (var t0 = tbeg; t0 < tend; t0 += TT) {
    let len = min(TT, tend - t0);
    // A sub-chunk boundary inside the segment: the sums so far start sub-chunk done / L.
    let done = t0 + TT - tbeg;
    let boundary = SUB && done % L == 0u && t0 + TT < tend;
    // With ZN > 1 the stagers' key sums meet in sZ where z is stored: boundaries and the end.
    let meet = ZN > 1u && (boundary || t0 + TT >= tend);
    // This tile from the registers; the previous tile's last barrier is behind us.
    if (lid < TT * K4) {
      let x = cook_k(f.k0, blk(bh, t0, len, lid, K4, K));
      sK[lid] = x;
      zp += x;
    }
    if (lid + NT < TT * K4) {
      let x = cook_k(f.k1, blk(bh, t0, len, lid + NT, K4, K));
      sK[lid + NT] = x;
      zp += x;
    }
    if (lid < TT * V4) {
      sV[lid] = cook_v(f.v0, blk(bh, t0, len, lid, V4, V));
    }
    if (lid + NT < TT * V4) {
      sV[lid + NT] = cook_v(f.v1, blk(bh, t0, len, lid + NT, V4, V));
    }
    if (meet) { sZ[lid] = zp; }
    workgroupBarrier();
    if (t0 + TT < tend) { f = fetch(bh, t0 + TT, min(TT, tend - t0 - TT), lid); }
    if (isS) {
      for (var s = 0u; s < TT; s++) {
        let kk = sK[s * K4 + kr];
        let vv = sV[s * V4 + c];
        s0 = fma(vec4f(kk.x), vv, s0);
        s1 = fma(vec4f(kk.y), vv, s1);
        s2 = fma(vec4f(kk.z), vv, s2);
        s3 = fma(vec4f(kk.w), vv, s3);
        if (RB == 2u) {
          let k1 = sK[s * K4 + kr1];
          s4 = fma(vec4f(k1.x), vv, s4);
          s5 = fma(vec4f(k1.y), vv, s5);
          s6 = fma(vec4f(k1.z), vv, s6);
          s7 = fma(vec4f(k1.w), vv, s7);
        }
      }
    }
    if (meet && lid < K4) {
      // Invocations lid + j·K4 stage row block lid (K4 divides NT).
      var za = sZ[lid];
      for (var j = 1u; j < NT / K4; j++) { za += sZ[lid + j * K4]; }
      z = za;
    }
    // The key sum in four partial sums: one chain of TT dependent adds on these 16 invocations
    // held every other warp at the second barrier (session 8: 0.2 of 3.9 ms at 1M bf16).
    if (ZN == 1u && lid < K4) {
      var za = vec4f(0.0);
      var zb = vec4f(0.0);
      var zc = vec4f(0.0);
      var zd = vec4f(0.0);
      var s = 0u;
      for (; s + 4u <= TT; s += 4u) {
        za += sK[s * K4 + lid];
        zb += sK[(s + 1u) * K4 + lid];
        zc += sK[(s + 2u) * K4 + lid];
        zd += sK[(s + 3u) * K4 + lid];
      }
      for (; s < TT; s++) { za += sK[s * K4 + lid]; }
      z += (za + zb) + (zc + zd);
    }
    if (boundary) {
      let at = ((bh * p.NC + seg) * (NSUB - 1u) + done / L - 1u) * SLOT;
      if (isS) {
        let x = at + 4u * kr * V4 + c;
        st_cs(x, s0);
        st_cs(x + V4, s1);
        st_cs(x + 2u * V4, s2);
        st_cs(x + 3u * V4, s3);
        if (has1) {
          st_cs(x + 4u * V4, s4);
          st_cs(x + 5u * V4, s5);
          st_cs(x + 6u * V4, s6);
          st_cs(x + 7u * V4, s7);
        }
      }
      if (lid < K4) { st_cs(at + 4u * K4 * V4 + lid, z); }
    }
    workgroupBarrier();
  }
  let base = (bh * p.NC + seg * CPS) * (K * V + K);
  if (isS) {
    st_srow(base, 4u * kr, c, s0);
    st_srow(base, 4u * kr + 1u, c, s1);
    st_srow(base, 4u * kr + 2u, c, s2);
    st_srow(base, 4u * kr + 3u, c, s3);
    if (has1) {
      st_srow(base, 4u * kr + 4u, c, s4);
      st_srow(base, 4u * kr + 5u, c, s5);
      st_srow(base, 4u * kr + 6u, c, s6);
      st_srow(base, 4u * kr + 7u, c, s7);
    }
  }
  if (lid < K4) { st_zblk(base, lid, z); }
}
