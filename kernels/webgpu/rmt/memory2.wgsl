// rmt memory update, mode 2 (`rmt.mem` = 2): M_{s+1} = softmax_rows(scale · M_s K̃ᵀ) Ṽ with
// K̃ = [M_s; k_seg], Ṽ = [M_s; v_seg] (no mask), the same bindings, wsmem slots, wsctr and
// final_state as segment.wgsl's memory branch (mode 1), so init, bump and the token pass are
// unchanged. One dispatch per segment, in order; wsctr[0] says which segment.
//
// Why: mode 1 gives each memory row one invocation walking all M + nₛ keys with D-long
// per-invocation arrays (local memory on NVIDIA's Vulkan path) in workgroups of 64 of which M are
// busy. Here a workgroup of 256 takes MB = 16 memory rows of one head (grid ⌈M/16⌉ × B·H), every
// invocation busy, and per-invocation state is a few named vec4s with constant indices:
//   invocation lid = r·G + x (row r < 16, x < G = 16);
//   keys in tiles of TK (64 if workgroup memory allows, else 32, 16), staged as vec4 rows (sK rows
//   padded to an odd vec4 stride so the score phase's 16 different key rows hit distinct banks);
//   phase A: invocation (r, x) scores keys x, x+G, … (KPI = TK/G of them, one vec4 `s`) against
//   query row r (sQ, pre-scaled), partial row max → sRed;
//   phase B: row max from the row's G partials (every invocation of the row alike), p = exp(s − m)
//   → sP, its share of the row sum kept per invocation (reduced once after the last tile, since
//   every share gets the same corrections), acc *= exp(m_old − m);
//   phase C: acc += P·V for its output columns 4x…4x+3 (and 4(x+G)… when D > 64: acc1).
// Dependent barrier phases per segment: 1 (queries) + 4 per tile (load, A, B, C) + 1 (row sums).
//
// Counts at M = 16, L = 512, D = 64 per (b, h) and segment, TK = 64 (H100, 48 KiB): 9 tiles
// (528 keys), 38 phases; 4·16·576·64 = 2.4 MFLOP incl. padding (2.2 useful), 9.2 K exp. The one SM
// a head gets is shared-memory bound: per tile and warp ≈ 80 LDS.128 (A) + 64 LDS.128 + 64 LDS.32
// (C) ≈ 600 wavefronts, ×8 warps ≈ 5 K clocks ≈ 3 µs, plus a global load (≈ 1 µs exposed) and four
// barriers: ≈ 4 µs a tile, ≈ 36 µs a segment, plus the bump dispatch and two dispatch gaps
// (≈ 10–20 µs): ≈ 50 µs a segment (≈ 0.1 s at 1M, against ≈ 4 ms a segment for mode 1; CUDA's
// chain 150 µs). Lavapipe (2 CPU cores, a proxy only: prof.ts B1 H8 M16 T=4096, 8 segments):
// memory pass 299 → 58 ms in f32, 614 → 98 ms in bf16. Not done: splitting a head's rows over
// several workgroups (MB = 4 would put a head on 4 SMs and quarter the shared-memory time per
// tile) and prefetching the next tile.
const G: u32 = 16u;   // invocations per memory row
const MB: u32 = 16u;  // memory rows per workgroup (256 / G)
const D4: u32 = (D + 3u) / 4u;
const KS: u32 = D4 + 1u - D4 % 2u;  // sK row stride in vec4s (odd)
const KPI: u32 = TK / G;  // keys per invocation in phase A: 1, 2 or 4
const NEG: f32 = -3.0e38;

var<workgroup> sQ: array<vec4f, MB * D4>;
var<workgroup> sK: array<vec4f, TK * KS>;
var<workgroup> sV: array<vec4f, TK * D4>;
var<workgroup> sP: array<f32, MB * TK>;
var<workgroup> sRed: array<f32, MB * G>;
var<workgroup> sSeg: u32;

// Elements d … d+3 (d < D) of an f32 memory row at `at`, zero past D.
fn mem4(at: u32, d: u32) -> vec4f {
  var x = vec4f(wsmem[at + d], 0.0, 0.0, 0.0);
  if (d + 1u < D) { x.y = wsmem[at + d + 1u]; }
  if (d + 2u < D) { x.z = wsmem[at + d + 2u]; }
  if (d + 3u < D) { x.w = wsmem[at + d + 3u]; }
  return x;
}

fn k4(at: u32, d: u32) -> vec4f {
  var x = vec4f(ld_k(at + d), 0.0, 0.0, 0.0);
  if (d + 1u < D) { x.y = ld_k(at + d + 1u); }
  if (d + 2u < D) { x.z = ld_k(at + d + 2u); }
  if (d + 3u < D) { x.w = ld_k(at + d + 3u); }
  return x;
}

fn v4(at: u32, d: u32) -> vec4f {
  var x = vec4f(ld_v(at + d), 0.0, 0.0, 0.0);
  if (d + 1u < D) { x.y = ld_v(at + d + 1u); }
  if (d + 2u < D) { x.z = ld_v(at + d + 2u); }
  if (d + 3u < D) { x.w = ld_v(at + d + 3u); }
  return x;
}

// Output elements d … d+3 (d < D) of memory row `row` into the next slot (and final_state).
fn store4(next: u32, fin: u32, last: bool, d: u32, x: vec4f) {
  wsmem[next + d] = x.x;
  if (d + 1u < D) { wsmem[next + d + 1u] = x.y; }
  if (d + 2u < D) { wsmem[next + d + 2u] = x.z; }
  if (d + 3u < D) { wsmem[next + d + 3u] = x.w; }
  if (last) {
    final_state[fin + d] = x.x;
    if (d + 1u < D) { final_state[fin + d + 1u] = x.y; }
    if (d + 2u < D) { final_state[fin + d + 2u] = x.z; }
    if (d + 3u < D) { final_state[fin + d + 3u] = x.w; }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) { sSeg = wsctr[0]; }
  let seg = workgroupUniformLoad(&sSeg);
  let bh = wid.y;
  let b = bh / p.H;
  let h = bh % p.H;
  let s0 = seg * p.L;
  let nk = p.M + min(p.L, p.T - s0);  // keys: the M memory rows, then the segment's tokens
  let mem = (seg * p.BH + bh) * p.M * D;
  let r0 = wid.x * MB;
  let r = lid / G;
  let x = lid % G;

  for (var e = lid; e < MB * D4; e += 256u) {
    let rr = r0 + e / D4;
    var q = vec4f(0.0);
    if (rr < p.M) { q = mem4(mem + rr * D, 4u * (e % D4)) * p.scale; }
    sQ[e] = q;
  }
  var m = NEG;
  var lp = 0.0;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  for (var j0 = 0u; j0 < nk; j0 += TK) {
    workgroupBarrier();
    for (var e = lid; e < TK * D4; e += 256u) {
      let jj = e / D4;
      let d = 4u * (e % D4);
      let j = j0 + jj;
      var xk = vec4f(0.0);
      var xv = vec4f(0.0);
      if (j < p.M) {
        xk = mem4(mem + j * D, d);
        xv = xk;
      } else if (j < nk) {
        let at = ((b * p.T + s0 + j - p.M) * p.H + h) * D;
        xk = k4(at, d);
        xv = v4(at, d);
      }
      sK[jj * KS + e % D4] = xk;
      sV[e] = xv;
    }
    workgroupBarrier();
    // A: scores of keys x + G·c (c < KPI) for query row r.
    var a0 = vec4f(0.0);
    var a1 = vec4f(0.0);
    var a2 = vec4f(0.0);
    var a3 = vec4f(0.0);
    for (var i = 0u; i < D4; i++) {
      let q = sQ[r * D4 + i];
      a0 = fma(q, sK[x * KS + i], a0);
      if (KPI > 1u) { a1 = fma(q, sK[(x + G) * KS + i], a1); }
      if (KPI > 2u) {
        a2 = fma(q, sK[(x + 2u * G) * KS + i], a2);
        a3 = fma(q, sK[(x + 3u * G) * KS + i], a3);
      }
    }
    let one = vec4f(1.0);
    let live = vec4<bool>(
      (j0 + x < nk),
      (KPI > 1u) && (j0 + x + G < nk),
      (KPI > 2u) && (j0 + x + 2u * G < nk),
      (KPI > 2u) && (j0 + x + 3u * G < nk),
    );
    let s = select(vec4f(NEG), vec4f(dot(a0, one), dot(a1, one), dot(a2, one), dot(a3, one)), live);
    sRed[lid] = max(max(s.x, s.y), max(s.z, s.w));
    workgroupBarrier();
    // B: the row's running max, this invocation's probabilities and share of the row sum.
    var tmax = m;
    for (var g = 0u; g < G; g++) { tmax = max(tmax, sRed[r * G + g]); }
    let corr = exp(m - tmax);
    m = tmax;
    let pv = select(vec4f(0.0), exp(s - vec4f(tmax)), live);
    sP[r * TK + x] = pv.x;
    if (KPI > 1u) { sP[r * TK + x + G] = pv.y; }
    if (KPI > 2u) {
      sP[r * TK + x + 2u * G] = pv.z;
      sP[r * TK + x + 3u * G] = pv.w;
    }
    lp = fma(lp, corr, dot(pv, one));
    acc0 *= corr;
    acc1 *= corr;
    workgroupBarrier();
    // C: acc += P V over the tile's live keys, output columns 4x… (and 4(x + G)…).
    let n = min(TK, nk - j0);
    if (x < D4) {
      for (var jj = 0u; jj < n; jj++) {
        let pj = vec4f(sP[r * TK + jj]);
        acc0 = fma(pj, sV[jj * D4 + x], acc0);
        if (D4 > G && x + G < D4) { acc1 = fma(pj, sV[jj * D4 + x + G], acc1); }
      }
    }
  }
  // Row sums from the G shares (phase B's reads of sRed are behind the barrier before C).
  sRed[lid] = lp;
  workgroupBarrier();
  var l = 0.0;
  for (var g = 0u; g < G; g++) { l += sRed[r * G + g]; }
  let row = r0 + r;
  if (row >= p.M || x >= D4) { return; }
  let inv = 1.0 / l;
  let next = ((seg + 1u) * p.BH + bh) * p.M * D + row * D;
  let fin = ((b * p.M + row) * p.H + h) * D;
  let last = seg + 1u == p.S;
  store4(next, fin, last, 4u * x, acc0 * inv);
  if (D4 > G && x + G < D4) { store4(next, fin, last, 4u * (x + G), acc1 * inv); }
}
