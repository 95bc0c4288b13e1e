// What seg_out5.wgsl (la.out 5) and chunk_out8/9.wgsl (la.out 8, 9) share: a step's (or
// sub-chunk's) L tokens in workgroup memory, padded against bank conflicts (seg_out5's header:
// one vec4 after every 4 rows of φ(K), rows of φ(Q) and of the scores an odd number of vec4s),
// the loads of its q, k, v blocks as storage words into registers (fetch, blocks lid and lid + NT)
// and their unpacking into workgroup memory (put_qk, put_v), mac4, and the output stores
// (store_o). The builder (seg_fwd.ts) puts this file in front of those versions. Every override
// of those versions is declared here, ahead of any function: naga 29 (Deno 2.9.6) panics
// (handlevec.rs:66) on an override declared after a function that reads overrides.
override L: u32 = 32;       // tokens per step (la.sub) or sub-chunk (la.cs_len)
override L4: u32 = 8;
override SEGT: u32 = 4096;  // tokens per segment
override NT: u32 = 256;     // invocations (the version's roles, see its header)
override K4: u32 = 16;
override V4: u32 = 16;
override NORMALIZE: bool = true;
override QS: u32 = K4 | 1u;  // vec4s per row of sQ
override AS: u32 = L4 | 1u;  // vec4s per row of sA
// seg_out5 only:
override STATES: bool = false;
// ws slots per segment: 1 in mode fwd; with STATES the chunks per segment (seg_state.wgsl).
override CPS: u32 = 1;
// chunk_out8 and 9 only:
override NSUB: u32 = 128;   // sub-chunks per segment, ⌈SEGT / L⌉ (a segment's last may be short)
override G: u32 = 8;       // sub-chunks per workgroup (la.out_g, at most NSUB)
override SLOT: u32 = 4u * K4 * V4 + K4;  // vec4s per state in wsc: [4·K4][V4], then z [K4]

var<workgroup> sQ: array<vec4f, L * QS>;       // φ(q) [L][QS]
var<workgroup> sK: array<vec4f, L * K4 + L4>;  // φ(k) [L][K4], a vec4 of padding every 4 rows
var<workgroup> sV: array<vec4f, L * V4>;       // v [L][V4]
var<workgroup> sS: array<vec4f, 4u * K4 * V4>; // state at the step's start [4·K4][V4]
var<workgroup> sA: array<vec4f, L * AS>;       // masked scores [L][AS] (lower block triangle)
var<workgroup> sZ: array<vec4f, K4>;           // key sum at the step's start
var<workgroup> sD: array<f32, L>;              // denominators of the step's rows

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

// Output row t0 + t, columns 4c…4c+3, in pairs so that a bf16 word is written whole.
fn store_o(bh: u32, t0: u32, len: u32, t: u32, c: u32, o: vec4f) {
  if (t >= len) { return; }
  let rb = row_base(bh, t0 + t, V);
  let v = 4u * c;
  if (v < V) { st2_o(rb + v, o.x, o.y, v + 1u < V); }
  if (v + 2u < V) { st2_o(rb + v + 2u, o.z, o.w, v + 3u < V); }
}
