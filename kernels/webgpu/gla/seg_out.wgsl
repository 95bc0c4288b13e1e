// gla segmented forward, pass 3: one workgroup per (segment s, head bh) walks the segment's chunks
// in order from S = the state at the segment start (ws after pass 2), with S held in registers
// (a 4×4 tile per invocation of an RK×RV grid). Per chunk of C tokens, G the within-chunk cumsum:
//   O = scale·[(Q ⊙ exp(G)) S + A V],  A_ij = Σ_l q_il k_jl exp(G_il − G_jl) (j ≤ i),
//   S ← diag(exp(Γ)) S + (K ⊙ exp(Γ − G))ᵀ V.
// Tokens are grouped in 4-token blocks m with block-local decays: Q̂_i = q_i ⊙ exp(G_i − P_{m−1})
// and K̂_j = k_j ⊙ exp(P_m − G_j), P_m = G at the block's last token. For blocks n < m,
// A_ij = Σ_l Q̂_il K̂_jl exp(P_{m−1,l} − P_{n,l}): one exponential per key for a 4×4 tile instead of
// sixteen. Inside a block the decays are products of exp(g) of the tokens between (exponents ≤ 0
// everywhere). Keys are walked in slices of KT; the row grid is RT×RW (4 rows × 4 columns each).
override RT: u32 = 16;    // ⌈C/4⌉ token blocks
override RV: u32 = 16;    // ⌈V/4⌉
override RK: u32 = 16;    // ⌈K/4⌉
override RW: u32 = 16;    // max(RT, RV)
override KT: u32 = 16;    // keys per slice: a multiple of 4 dividing 4·RK
override QS: u32 = 17;    // row stride (vec4s) of the slice arrays, RT + 1 against bank conflicts
override CPS: u32 = 16;   // chunks per segment
override WGN: u32 = 256;  // invocations: max(RT·RW, RK·RV, RT·KT)
override NX: u32 = 1024;  // vec4s of sX
override NY: u32 = 1024;  // vec4s of sY
// fwdbwd with gla.fwd_seg = 2: ws keeps the per-chunk layout [B·H, NC, K·V + K] and the walk
// also leaves what chunk_state.wgsl and chunk_scan.wgsl leave for the backward: every chunk's
// starting S (plain, not decay-normalized; the segment's first chunk holds it already from
// seg_scan.wgsl) and its Γ (the sum of its gates per key, the same block sums as its decay).
// A pipeline constant: mode fwd's pipeline keeps it false.
override STATES: bool = false;

// S (rows of 4·RV) while the slices are walked; then the diagonal blocks' partial scores
// [RT][10][KT]; then the chunk's v rows [4·RT][RV].
var<workgroup> sX: array<vec4f, NX>;
// K ⊙ exp(Γ − G) [4·RT][RK], for the state update.
var<workgroup> sKt: array<vec4f, 4u * RT * RK>;
// Per slice: Q̂ [KT][QS], K̂ [KT][QS], Q ⊙ exp(G) [KT][QS], then f32 block sums and prefixes
// P [KT][RT] each; after the slices, A transposed [4·RT (j)][RT (row block)].
var<workgroup> sY: array<vec4f, NY>;

const ND: u32 = 10u;  // scores on or below the diagonal of a 4×4 block

@compute @workgroup_size(WGN)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let s = wid.x;
  let bh = wid.y;
  let KP = 4u * RK;
  let CP = 4u * RT;
  let QH = 0u;
  let KH = KT * QS;
  let QE = 2u * KT * QS;
  let TOT = 4u * 3u * KT * QS;  // f32 index of the block sums; P follows
  let PP = TOT + KT * RT;

  // Row grid: O tile rows 4tr…, columns 4tc…; A tile rows 4tr…, columns 4tc… (tc < tr).
  let tr = lid / RW;
  let tc = lid % RW;
  let oact = tr < RT && tc < RV;
  // State grid: S rows (keys) 4sr…, columns 4sc….
  let sr = lid / RV;
  let sc = lid % RV;
  let sact = lid < RK * RV;
  // Slice preparation: block pm of the chunk, key pl of the slice.
  let pm = lid / KT;
  let pl = lid % KT;
  let pact = lid < RT * KT;

  let KVZ = K * V + K;
  let nseg = (p.NC + CPS - 1u) / CPS;
  let sbase = select(bh * nseg + s, bh * p.NC + s * CPS, STATES) * KVZ;
  var s0 = vec4f(0.0);
  var s1 = vec4f(0.0);
  var s2 = vec4f(0.0);
  var s3 = vec4f(0.0);
  if (sact) {
    s0 = load_row(sbase, 4u * sr, 4u * sc);
    s1 = load_row(sbase, 4u * sr + 1u, 4u * sc);
    s2 = load_row(sbase, 4u * sr + 2u, 4u * sc);
    s3 = load_row(sbase, 4u * sr + 3u, 4u * sc);
  }

  let c1 = min((s + 1u) * CPS, p.NC);
  // The slice preparation's q, k, g are loaded one slice ahead, so their latency overlaps the
  // current slice's products instead of stalling every invocation at the next barrier.
  var nq = vec4f(0.0);
  var nk = vec4f(0.0);
  var ng = vec4f(0.0);
  if (pact) {
    let r = slice_rows(bh, s * CPS, pl, pm);
    nq = rows_q(r.x, r.y);
    nk = rows_k(r.x, r.y);
    ng = rows_g(r.x, r.y);
  }
  for (var c = s * CPS; c < c1; c++) {
    let t0 = c * C;
    let len = min(C, p.T - t0);
    let cbase = (bh * p.NC + c) * KVZ;  // chunk c's slot (STATES)
    if (STATES && sact && c != s * CPS) {
      store_row(cbase, 4u * sr, 4u * sc, s0);
      store_row(cbase, 4u * sr + 1u, 4u * sc, s1);
      store_row(cbase, 4u * sr + 2u, 4u * sc, s2);
      store_row(cbase, 4u * sr + 3u, 4u * sc, s3);
    }
    if (sact) {
      let at = 4u * sr * RV + sc;
      sX[at] = s0;
      sX[at + RV] = s1;
      sX[at + 2u * RV] = s2;
      sX[at + 3u * RV] = s3;
    }
    workgroupBarrier();

    var o0 = vec4f(0.0);
    var o1 = vec4f(0.0);
    var o2 = vec4f(0.0);
    var o3 = vec4f(0.0);
    var a0 = vec4f(0.0);
    var a1 = vec4f(0.0);
    var a2 = vec4f(0.0);
    var a3 = vec4f(0.0);
    var dec = vec4f(1.0);
    // This invocation's share (key pl of each slice) of its block's diagonal 4×4 scores.
    var d00 = 0.0;
    var d10 = 0.0;
    var d11 = 0.0;
    var d20 = 0.0;
    var d21 = 0.0;
    var d22 = 0.0;
    var d30 = 0.0;
    var d31 = 0.0;
    var d32 = 0.0;
    var d33 = 0.0;

    for (var k0 = 0u; k0 < KP; k0 += KT) {
      let kk = k0 + pl;
      var tot = 0.0;
      var qh = vec4f(0.0);
      var kh = vec4f(0.0);
      if (pact) {
        let q = nq;
        let k = nk;
        let g = ng;
        var nc = c;
        var nk0 = k0 + KT;
        if (nk0 == KP) {
          nc = c + 1u;
          nk0 = 0u;
        }
        if (nc < c1) {
          let r = slice_rows(bh, nc, nk0 + pl, pm);
          nq = rows_q(r.x, r.y);
          nk = rows_k(r.x, r.y);
          ng = rows_g(r.x, r.y);
        }
        let e = exp(g);
        let e12 = e.y * e.z;
        let e23 = e.z * e.w;
        let e123 = e.y * e23;
        qh = q * vec4f(e.x, e.x * e.y, e.x * e12, e.x * e12 * e.w);
        kh = k * vec4f(e123, e23, e.w, 1.0);
        d00 += q.x * k.x;
        d11 += q.y * k.y;
        d22 += q.z * k.z;
        d33 += q.w * k.w;
        d10 += q.y * e.y * k.x;
        d21 += q.z * e.z * k.y;
        d32 += q.w * e.w * k.z;
        d20 += q.z * e12 * k.x;
        d31 += q.w * e23 * k.y;
        d30 += q.w * e123 * k.x;
        tot = g.x + g.y + g.z + g.w;
        sY[QH + pl * QS + pm] = qh;
        sY[KH + pl * QS + pm] = kh;
        sty(TOT + pl * RT + pm, tot);
      }
      workgroupBarrier();
      if (pact) {
        // The same left-to-right sums for every block, so P_{m−1} − P_n ≤ 0 exactly.
        var before = 0.0;
        var after = 0.0;
        for (var b = 0u; b < RT; b++) {
          let x = ldy(TOT + pl * RT + b);
          if (b < pm) { before += x; }
          if (b > pm) { after += x; }
        }
        sty(PP + pl * RT + pm, before + tot);
        sY[QE + pl * QS + pm] = qh * exp(before);
        let w = kh * exp(after);
        let t = 4u * pm;
        let q = kk / 4u;
        let j = kk % 4u;
        sKt[t * RK + q][j] = w.x;
        sKt[(t + 1u) * RK + q][j] = w.y;
        sKt[(t + 2u) * RK + q][j] = w.z;
        sKt[(t + 3u) * RK + q][j] = w.w;
      }
      workgroupBarrier();
      if (oact) {
        for (var l = 0u; l < KT; l++) {
          let a = sY[QE + l * QS + tr];
          let b = sX[(k0 + l) * RV + tc];
          o0 = fma(vec4f(a.x), b, o0);
          o1 = fma(vec4f(a.y), b, o1);
          o2 = fma(vec4f(a.z), b, o2);
          o3 = fma(vec4f(a.w), b, o3);
        }
      }
      if (tr < RT && tc < tr) {
        for (var l = 0u; l < KT; l++) {
          let a = sY[QH + l * QS + tr];
          let d = exp(ldy(PP + l * RT + tr - 1u) - ldy(PP + l * RT + tc));
          let b = sY[KH + l * QS + tc] * d;
          a0 = fma(vec4f(a.x), b, a0);
          a1 = fma(vec4f(a.y), b, a1);
          a2 = fma(vec4f(a.z), b, a2);
          a3 = fma(vec4f(a.w), b, a3);
        }
      }
      if (sact && 4u * sr >= k0 && 4u * sr < k0 + KT) {
        let l = 4u * sr - k0;
        let last = PP + RT - 1u;
        let gam = vec4f(
          ldy(last + l * RT),
          ldy(last + (l + 1u) * RT),
          ldy(last + (l + 2u) * RT),
          ldy(last + (l + 3u) * RT),
        );
        dec = exp(gam);
        if (STATES && sc == 0u) {
          for (var i = 0u; i < 4u; i++) {
            if (4u * sr + i < K) { ws[cbase + K * V + 4u * sr + i] = gam[i]; }
          }
        }
      }
      workgroupBarrier();
    }

    // Scores into sY (transposed, [j][row block]); the diagonal blocks are summed over keys
    // through sX next.
    if (pact) {
      let at = pm * ND * KT + pl;
      stx(at, d00);
      stx(at + KT, d10);
      stx(at + 2u * KT, d11);
      stx(at + 3u * KT, d20);
      stx(at + 4u * KT, d21);
      stx(at + 5u * KT, d22);
      stx(at + 6u * KT, d30);
      stx(at + 7u * KT, d31);
      stx(at + 8u * KT, d32);
      stx(at + 9u * KT, d33);
    }
    if (tr < RT && tc < RT && tc != tr) {
      let at = 4u * tc * RT + tr;
      sY[at] = vec4f(a0.x, a1.x, a2.x, a3.x);
      sY[at + RT] = vec4f(a0.y, a1.y, a2.y, a3.y);
      sY[at + 2u * RT] = vec4f(a0.z, a1.z, a2.z, a3.z);
      sY[at + 3u * RT] = vec4f(a0.w, a1.w, a2.w, a3.w);
    }
    workgroupBarrier();
    for (var it = lid; it < RT * 16u; it += WGN) {
      let m = it / 16u;
      let i = (it / 4u) % 4u;
      let j = it % 4u;
      var x = 0.0;
      if (j <= i) {
        let at = (m * ND + i * (i + 1u) / 2u + j) * KT / 4u;
        var acc = vec4f(0.0);
        for (var l = 0u; l < KT / 4u; l++) { acc += sX[at + l]; }
        x = acc.x + acc.y + acc.z + acc.w;
      }
      sY[(4u * m + j) * RT + m][i] = x;
    }
    workgroupBarrier();
    for (var e = lid; e < CP * RV; e += WGN) {
      let t = e / RV;
      let col = 4u * (e % RV);
      var x = vec4f(0.0);
      if (t < len) {
        let r = row_base(bh, t0 + t, V) + col;
        x.x = ld_v(r);
        if (col + 1u < V) { x.y = ld_v(r + 1u); }
        if (col + 2u < V) { x.z = ld_v(r + 2u); }
        if (col + 3u < V) { x.w = ld_v(r + 3u); }
      }
      sX[e] = x;
    }
    workgroupBarrier();
    if (oact) {
      // Causal: rows 4tr… see columns j < 4tr + 4 only.
      for (var j = 0u; j < 4u * tr + 4u; j++) {
        let a = sY[j * RT + tr];
        let b = sX[j * RV + tc];
        o0 = fma(vec4f(a.x), b, o0);
        o1 = fma(vec4f(a.y), b, o1);
        o2 = fma(vec4f(a.z), b, o2);
        o3 = fma(vec4f(a.w), b, o3);
      }
      store_o(bh, t0, 4u * tr, len, 4u * tc, o0);
      store_o(bh, t0, 4u * tr + 1u, len, 4u * tc, o1);
      store_o(bh, t0, 4u * tr + 2u, len, 4u * tc, o2);
      store_o(bh, t0, 4u * tr + 3u, len, 4u * tc, o3);
    }
    if (sact) {
      s0 *= dec.x;
      s1 *= dec.y;
      s2 *= dec.z;
      s3 *= dec.w;
      for (var t = 0u; t < CP; t++) {
        let a = sKt[t * RK + sr];
        let b = sX[t * RV + sc];
        s0 = fma(vec4f(a.x), b, s0);
        s1 = fma(vec4f(a.y), b, s1);
        s2 = fma(vec4f(a.z), b, s2);
        s3 = fma(vec4f(a.w), b, s3);
      }
    }
    workgroupBarrier();
  }
}

// Where tokens 4m … 4m+3 of chunk c start in key column kk, and how many of them there are
// (0 past K: those keys are zero).
fn slice_rows(bh: u32, c: u32, kk: u32, m: u32) -> vec2u {
  let t = c * C + 4u * m;
  var n = 0u;
  if (kk < K) { n = min(4u, min(C - min(C, 4u * m), p.T - min(p.T, t))); }
  return vec2u(row_base(bh, t, K) + kk, n);
}

// Key column r of n (≤ 4) consecutive tokens, zero-filled.
fn rows_q(r: u32, n: u32) -> vec4f {
  let st = p.H * K;
  var x = vec4f(0.0);
  if (n > 0u) { x.x = ld_q(r); }
  if (n > 1u) { x.y = ld_q(r + st); }
  if (n > 2u) { x.z = ld_q(r + 2u * st); }
  if (n > 3u) { x.w = ld_q(r + 3u * st); }
  return x;
}

fn rows_k(r: u32, n: u32) -> vec4f {
  let st = p.H * K;
  var x = vec4f(0.0);
  if (n > 0u) { x.x = ld_k(r); }
  if (n > 1u) { x.y = ld_k(r + st); }
  if (n > 2u) { x.z = ld_k(r + 2u * st); }
  if (n > 3u) { x.w = ld_k(r + 3u * st); }
  return x;
}

fn rows_g(r: u32, n: u32) -> vec4f {
  let st = p.H * K;
  var x = vec4f(0.0);
  if (n > 0u) { x.x = ld_g(r); }
  if (n > 1u) { x.y = ld_g(r + st); }
  if (n > 2u) { x.z = ld_g(r + 2u * st); }
  if (n > 3u) { x.w = ld_g(r + 3u * st); }
  return x;
}

// f32 views of the vec4 arrays for the scalar parts (block sums, prefixes, diagonal partials).
fn ldy(i: u32) -> f32 {
  return sY[i / 4u][i % 4u];
}

fn sty(i: u32, x: f32) {
  sY[i / 4u][i % 4u] = x;
}

fn stx(i: u32, x: f32) {
  sX[i / 4u][i % 4u] = x;
}

fn load_row(base: u32, row: u32, col: u32) -> vec4f {
  var x = vec4f(0.0);
  if (row >= K) { return x; }
  let at = base + row * V + col;
  if (col < V) { x.x = ws[at]; }
  if (col + 1u < V) { x.y = ws[at + 1u]; }
  if (col + 2u < V) { x.z = ws[at + 2u]; }
  if (col + 3u < V) { x.w = ws[at + 3u]; }
  return x;
}

fn store_row(base: u32, row: u32, col: u32, x: vec4f) {
  if (row >= K) { return; }
  let at = base + row * V + col;
  if (col < V) { ws[at] = x.x; }
  if (col + 1u < V) { ws[at + 1u] = x.y; }
  if (col + 2u < V) { ws[at + 2u] = x.z; }
  if (col + 3u < V) { ws[at + 3u] = x.w; }
}

fn store_o(bh: u32, t0: u32, t: u32, len: u32, col: u32, x: vec4f) {
  if (t >= len) { return; }
  let r = row_base(bh, t0 + t, V) + col;
  let y = x * p.scale;
  if (col < V) { st2_o(r, y.x, y.y, col + 1u < V); }
  if (col + 2u < V) { st2_o(r + 2u, y.z, y.w, col + 3u < V); }
}
