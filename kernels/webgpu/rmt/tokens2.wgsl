// Token queries of rmt (and causal softmax attention, one segment, M = 0), knob `<variant>.tok`
// = 2: FlashAttention-2 style, the same result as segment.wgsl's TOKENS branch (queries scaled
// by p.scale; keys [memory slot seg (wsmem, f32); the segment's tokens], causal within the
// segment, every memory row visible; online softmax, f32 throughout).
//
// Workgroup x takes BQ (64, or 32 where the workgroup memory does not allow 64) queries of
// segment x / ⌈L/BQ⌉ for head wid.y, with NT = BQ/4 · 8 invocations (128 at BQ 64), and walks
// key tiles of BK = 32 up to its last row's diagonal. Invocation (r, c) = (lid / 8, lid % 8)
// owns query rows 4r…4r+3 throughout: score tile S[4r…, 4c…] and output tiles O[4r…, 4c…] and
// (D > 32) O[4r…, 4(c+8)…], all in named vec4 registers (no run-time-indexed private arrays).
// Workgroup memory, as vec4s (D4 = ⌈D/4⌉, D zero-padded to 4·D4):
//   sQ  [BQ][D4]            q·scale, staged once;
//   sKP [max(4·D4, BQ)][8]  the key tile transposed (Kᵀ[d][4 keys]), then P [BQ][8];
//   sV  [BK][D4]            the value tile;
//   sR  [BQ/4][8]           per (row block, column block): 4 rows' partial max, then sums.
// D = 64, BQ = 64: 16 + 8 + 8 + 2 = 34 KiB (H100: 48 KiB); BQ = 32: 25 KiB (lavapipe: 32 KiB).
// Per key tile: stage K (transposed) and V → S = Q Kᵀ as mac4s over D4 (Q rows broadcast, Kᵀ
// rows consecutive across c: no bank conflicts) → mask (j < M + row + 1) → partial row max to
// sR → row max m′ over the 8 partials (identical in the 8 invocations of a row block) → P =
// exp(S − m′) written over Kᵀ, O and the partial row sums l scaled by exp(m − m′) → O += P V.
// The 8 partial l of a row are summed once at the end. 4 barriers per tile.
// Counts per tile and invocation (D = 64, BQ = 64): QKᵀ 1024 FMA from 128 vec4 loads, PV 1024
// FMA from 96 vec4 loads, + 8 vec4 loads for the max, 13 vec4 stores (Kᵀ, V, P, max), 16 exp,
// 32 scalar global loads (k, v); 2048 FMA per 232 workgroup-memory vec4 loads ≈ 8.8 FMA a load,
// as la's seg_out out tiles (8). 34 KiB a workgroup: 6 workgroups (768 invocations) per H100 SM.
// Prediction for softmax fwd B1 H8 D64 on the H100 (275 GFLOP at 16K, 4.4 TFLOP at 64K, plus
// < 1 % for the diagonal tiles): at la's 6–7 TFLOP/s ≈ 40–45 ms at 16K and 0.63–0.73 s at 64K
// (range 4–8 TFLOP/s: 35–70 ms, 0.55–1.1 s), against 459 ms and 6.5 s for segment.wgsl.
// Host-written consts: D, D4, BQ, KP (rows of sKP), and the storage accessors ld4_q, ld4_v.
const NEG: f32 = -3.0e38;
const BK: u32 = 32u;
const NC: u32 = 8u;        // column blocks of 4 keys per tile (BK / 4)
const NT: u32 = BQ / 4u * NC;

var<workgroup> sQ: array<vec4f, BQ * D4>;
var<workgroup> sKP: array<vec4f, KP * NC>;
var<workgroup> sV: array<vec4f, BK * D4>;
var<workgroup> sR: array<vec4f, BQ / 4u * NC>;

// o + a.x·b0 + a.y·b1 + a.z·b2 + a.w·b3: one row of a 4×4 tile times a 4-deep slab.
fn mac4(o: vec4f, a: vec4f, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) -> vec4f {
  return fma(vec4f(a.w), b3, fma(vec4f(a.z), b2, fma(vec4f(a.y), b1, fma(vec4f(a.x), b0, o))));
}

fn max4(x: vec4f) -> f32 {
  return max(max(x.x, x.y), max(x.z, x.w));
}

// Memory row j of slot `mem`, columns 4·d4…4·d4+3 (zero past D).
fn ld4_mem(mem: u32, j: u32, d4: u32) -> vec4f {
  let at = mem + j * D + 4u * d4;
  var x = vec4f(0.0);
  if (4u * d4 < D) { x.x = wsmem[at]; }
  if (4u * d4 + 1u < D) { x.y = wsmem[at + 1u]; }
  if (4u * d4 + 2u < D) { x.z = wsmem[at + 2u]; }
  if (4u * d4 + 3u < D) { x.w = wsmem[at + 3u]; }
  return x;
}

// Output row (element offset `rb`), columns 4·c4…, in pairs so that a bf16 word is written whole.
fn store_o(rb: u32, c4: u32, o: vec4f) {
  let d = 4u * c4;
  if (d < D) { st2_o(rb + d, o.x, o.y, d + 1u < D); }
  if (d + 2u < D) { st2_o(rb + d + 2u, o.z, o.w, d + 3u < D); }
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let blocks = (p.L + BQ - 1u) / BQ;
  let seg = wid.x / blocks;
  // First query of the block, counted from the segment start; the last (longest) blocks of a
  // segment go first, so that the short ones fill the tail of the dispatch.
  let q0 = (blocks - 1u - wid.x % blocks) * BQ;
  let bh = wid.y;
  let b = bh / p.H;
  let h = bh % p.H;
  let s0 = seg * p.L;
  let ns = min(p.L, p.T - s0);
  if (q0 >= ns) { return; }  // a short last segment has fewer blocks (uniform per workgroup)
  let mem = (seg * p.BH + bh) * p.M * D;
  let nk = p.M + min(ns, q0 + BQ);  // keys the block sees: memory, then tokens to its last row
  let r = lid / NC;
  let c = lid % NC;
  let two = c + NC < D4;  // a second output tile (D > 32)

  for (var e = lid; e < BQ * D4; e += NT) {
    let i = e / D4;
    var x = vec4f(0.0);
    if (q0 + i < ns) { x = ld4_q(((b * p.T + s0 + q0 + i) * p.H + h) * D, e % D4) * p.scale; }
    sQ[e] = x;
  }

  // Row 4r + i sees keys j < lim + i (all memory rows, its segment's tokens up to itself).
  let lim = p.M + q0 + 4u * r + 1u;
  var m = vec4f(NEG);  // running row maxima of rows 4r…4r+3
  var l = vec4f(0.0);  // running row sums over this invocation's key columns 4c…4c+3
  var o0 = vec4f(0.0);
  var o1 = vec4f(0.0);
  var o2 = vec4f(0.0);
  var o3 = vec4f(0.0);
  var o4 = vec4f(0.0);
  var o5 = vec4f(0.0);
  var o6 = vec4f(0.0);
  var o7 = vec4f(0.0);
  for (var j0 = 0u; j0 < nk; j0 += BK) {
    workgroupBarrier();
    // Kᵀ: element (key j0 + 4·j4 + u, column d) at sKP[d·NC + j4].u; consecutive invocations
    // take consecutive columns of one key row (coalesced global reads).
    for (var e = lid; e < NC * 4u * D4; e += NT) {
      let j4 = e / (4u * D4);
      let d = e % (4u * D4);
      var x = vec4f(0.0);
      if (d < D) {
        let j = j0 + 4u * j4;
        if (j < p.M) {
          x.x = wsmem[mem + j * D + d];
        } else if (j < nk) {
          x.x = ld_k(((b * p.T + s0 + j - p.M) * p.H + h) * D + d);
        }
        if (j + 1u < p.M) {
          x.y = wsmem[mem + (j + 1u) * D + d];
        } else if (j + 1u < nk) {
          x.y = ld_k(((b * p.T + s0 + j + 1u - p.M) * p.H + h) * D + d);
        }
        if (j + 2u < p.M) {
          x.z = wsmem[mem + (j + 2u) * D + d];
        } else if (j + 2u < nk) {
          x.z = ld_k(((b * p.T + s0 + j + 2u - p.M) * p.H + h) * D + d);
        }
        if (j + 3u < p.M) {
          x.w = wsmem[mem + (j + 3u) * D + d];
        } else if (j + 3u < nk) {
          x.w = ld_k(((b * p.T + s0 + j + 3u - p.M) * p.H + h) * D + d);
        }
      }
      sKP[d * NC + j4] = x;
    }
    for (var e = lid; e < BK * D4; e += NT) {
      let j = j0 + e / D4;
      var x = vec4f(0.0);
      if (j < p.M) {
        x = ld4_mem(mem, j, e % D4);
      } else if (j < nk) {
        x = ld4_v(((b * p.T + s0 + j - p.M) * p.H + h) * D, e % D4);
      }
      sV[e] = x;
    }
    workgroupBarrier();

    // S = (q·scale) Kᵀ for rows 4r…, keys j0 + 4c…
    var a0 = vec4f(0.0);
    var a1 = vec4f(0.0);
    var a2 = vec4f(0.0);
    var a3 = vec4f(0.0);
    let qb = 4u * r * D4;
    for (var d4 = 0u; d4 < D4; d4++) {
      let x0 = sQ[qb + d4];
      let x1 = sQ[qb + D4 + d4];
      let x2 = sQ[qb + 2u * D4 + d4];
      let x3 = sQ[qb + 3u * D4 + d4];
      let k = 4u * d4 * NC + c;
      let y0 = sKP[k];
      let y1 = sKP[k + NC];
      let y2 = sKP[k + 2u * NC];
      let y3 = sKP[k + 3u * NC];
      a0 = mac4(a0, x0, y0, y1, y2, y3);
      a1 = mac4(a1, x1, y0, y1, y2, y3);
      a2 = mac4(a2, x2, y0, y1, y2, y3);
      a3 = mac4(a3, x3, y0, y1, y2, y3);
    }
    let jc = j0 + 4u * c;
    let jv = vec4u(jc, jc + 1u, jc + 2u, jc + 3u);
    let v0 = jv < vec4u(lim);
    let v1 = jv < vec4u(lim + 1u);
    let v2 = jv < vec4u(lim + 2u);
    let v3 = jv < vec4u(lim + 3u);
    a0 = select(vec4f(NEG), a0, v0);
    a1 = select(vec4f(NEG), a1, v1);
    a2 = select(vec4f(NEG), a2, v2);
    a3 = select(vec4f(NEG), a3, v3);
    sR[r * NC + c] = vec4f(max4(a0), max4(a1), max4(a2), max4(a3));
    workgroupBarrier();

    // Everyone is past its Kᵀ reads: P goes over them.
    var mx = m;
    for (var cc = 0u; cc < NC; cc++) { mx = max(mx, sR[r * NC + cc]); }
    let corr = exp(m - mx);
    m = mx;
    let p0 = select(vec4f(0.0), exp(a0 - vec4f(mx.x)), v0);
    let p1 = select(vec4f(0.0), exp(a1 - vec4f(mx.y)), v1);
    let p2 = select(vec4f(0.0), exp(a2 - vec4f(mx.z)), v2);
    let p3 = select(vec4f(0.0), exp(a3 - vec4f(mx.w)), v3);
    let one = vec4f(1.0);
    l = fma(l, corr, vec4f(dot(p0, one), dot(p1, one), dot(p2, one), dot(p3, one)));
    let pw = 4u * r * NC + c;
    sKP[pw] = p0;
    sKP[pw + NC] = p1;
    sKP[pw + 2u * NC] = p2;
    sKP[pw + 3u * NC] = p3;
    o0 *= corr.x;
    o1 *= corr.y;
    o2 *= corr.z;
    o3 *= corr.w;
    o4 *= corr.x;
    o5 *= corr.y;
    o6 *= corr.z;
    o7 *= corr.w;
    workgroupBarrier();

    // O += P V: rows 4r…, columns 4c… (and 4(c+8)…), 4 keys a step.
    for (var k4 = 0u; k4 < NC; k4++) {
      let pa = 4u * r * NC + k4;
      let x0 = sKP[pa];
      let x1 = sKP[pa + NC];
      let x2 = sKP[pa + 2u * NC];
      let x3 = sKP[pa + 3u * NC];
      let vb = 4u * k4 * D4 + c;
      if (c < D4) {
        let b0 = sV[vb];
        let b1 = sV[vb + D4];
        let b2 = sV[vb + 2u * D4];
        let b3 = sV[vb + 3u * D4];
        o0 = mac4(o0, x0, b0, b1, b2, b3);
        o1 = mac4(o1, x1, b0, b1, b2, b3);
        o2 = mac4(o2, x2, b0, b1, b2, b3);
        o3 = mac4(o3, x3, b0, b1, b2, b3);
      }
      if (two) {
        let b0 = sV[vb + NC];
        let b1 = sV[vb + D4 + NC];
        let b2 = sV[vb + 2u * D4 + NC];
        let b3 = sV[vb + 3u * D4 + NC];
        o4 = mac4(o4, x0, b0, b1, b2, b3);
        o5 = mac4(o5, x1, b0, b1, b2, b3);
        o6 = mac4(o6, x2, b0, b1, b2, b3);
        o7 = mac4(o7, x3, b0, b1, b2, b3);
      }
    }
  }

  // Row sums: the 8 partial sums of each row (one per column block).
  workgroupBarrier();
  sR[r * NC + c] = l;
  workgroupBarrier();
  var lt = vec4f(0.0);
  for (var cc = 0u; cc < NC; cc++) { lt += sR[r * NC + cc]; }
  let inv = 1.0 / lt;
  let row = q0 + 4u * r;
  let rb = ((b * p.T + s0 + row) * p.H + h) * D;
  let rs = p.H * D;  // elements between consecutive tokens
  if (c < D4) {
    if (row < ns) { store_o(rb, c, o0 * inv.x); }
    if (row + 1u < ns) { store_o(rb + rs, c, o1 * inv.y); }
    if (row + 2u < ns) { store_o(rb + 2u * rs, c, o2 * inv.z); }
    if (row + 3u < ns) { store_o(rb + 3u * rs, c, o3 * inv.w); }
  }
  if (two) {
    if (row < ns) { store_o(rb, c + NC, o4 * inv.x); }
    if (row + 1u < ns) { store_o(rb + rs, c + NC, o5 * inv.y); }
    if (row + 2u < ns) { store_o(rb + 2u * rs, c + NC, o6 * inv.z); }
    if (row + 3u < ns) { store_o(rb + 3u * rs, c + NC, o7 * inv.w); }
  }
}
