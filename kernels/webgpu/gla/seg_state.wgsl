// gla segmented forward (mode fwd), pass 1: per (segment s, head bh) the segment's own state
// L = Σ_t (k_t ⊙ exp(Γ − G_t)) v_tᵀ [K×V] and its total log-decay Γ [K] (G the cumsum of g from
// the segment start), into ws [B·H, NSEG, K·V + K]. Tokens stream through workgroup memory CT at a
// time; L ← diag(exp(Γ_tile)) L + K̃ᵀV per tile. Within a tile the cumsum is taken over 4-token
// blocks (block totals in workgroup memory), so every exponent is a sum of later gates (≤ 0).
// Invocations form an RK×RV grid, each holding a 4×4 tile of L in registers.
override RK: u32 = 16;   // ⌈K/4⌉
override RV: u32 = 16;   // ⌈V/4⌉
override CT: u32 = 32;   // tokens per tile (a multiple of 4)
override CPS: u32 = 16;  // chunks of C tokens per segment
override WGN: u32 = 256; // invocations, ≥ RK·RV
// fwdbwd with gla.fwd_seg = 2: ws keeps the per-chunk layout [B·H, NC, K·V + K] that the
// backward reads, segment s in chunk s·CPS's slot (seg_out.wgsl fills the others).
override STATES: bool = false;

var<workgroup> sK: array<vec4f, CT * RK>;        // k ⊙ exp(Γ_tile − G) [CT][4·RK]
var<workgroup> sV: array<vec4f, CT * RV>;        // v [CT][4·RV]
var<workgroup> sTot: array<f32, CT / 4u * K>;    // gate sums per 4-token block [K][CT/4]
var<workgroup> sGam: array<vec4f, RK>;           // Γ_tile

@compute @workgroup_size(WGN)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let s = wid.x;
  let bh = wid.y;
  let NB = CT / 4u;
  let seg0 = s * CPS * C;
  let seg1 = min(seg0 + CPS * C, p.T);
  let tr = lid / RV;
  let tc = lid % RV;
  let act = lid < RK * RV;
  var l0 = vec4f(0.0);
  var l1 = vec4f(0.0);
  var l2 = vec4f(0.0);
  var l3 = vec4f(0.0);
  var gam = vec4f(0.0);
  for (var t0 = seg0; t0 < seg1; t0 += CT) {
    let len = min(CT, seg1 - t0);
    for (var e = lid; e < NB * K; e += WGN) {
      let m = e / K;
      let kk = e % K;
      let g = gates(bh, t0, len, m, kk);
      sTot[kk * NB + m] = g.x + g.y + g.z + g.w;
    }
    for (var e = lid; e < CT * RV; e += WGN) {
      let t = e / RV;
      let c = 4u * (e % RV);
      var x = vec4f(0.0);
      if (t < len) {
        let r = row_base(bh, t0 + t, V) + c;
        x.x = ld_v(r);
        if (c + 1u < V) { x.y = ld_v(r + 1u); }
        if (c + 2u < V) { x.z = ld_v(r + 2u); }
        if (c + 3u < V) { x.w = ld_v(r + 3u); }
      }
      sV[e] = x;
    }
    workgroupBarrier();
    // Keys past K have zero k and gates, so their slots come out 0 and Γ = 0.
    for (var e = lid; e < NB * 4u * RK; e += WGN) {
      let m = e / (4u * RK);
      let kk = e % (4u * RK);
      var before = 0.0;
      var after = 0.0;
      if (kk < K) {
        for (var b = 0u; b < NB; b++) {
          if (b < m) { before += sTot[kk * NB + b]; }
          if (b > m) { after += sTot[kk * NB + b]; }
        }
      }
      let g = gates(bh, t0, len, m, kk);
      // Suffix sums within the block: the gates after each token, each ≤ 0 as computed.
      let suf = vec4f(g.y + g.z + g.w, g.z + g.w, g.w, 0.0);
      var kv = vec4f(0.0);
      let t = 4u * m;
      if (kk < K) {
        let r = row_base(bh, t0, K) + kk;
        let stride = p.H * K;
        if (t < len) { kv.x = ld_k(r + t * stride); }
        if (t + 1u < len) { kv.y = ld_k(r + (t + 1u) * stride); }
        if (t + 2u < len) { kv.z = ld_k(r + (t + 2u) * stride); }
        if (t + 3u < len) { kv.w = ld_k(r + (t + 3u) * stride); }
      }
      let w = kv * exp(vec4f(after) + suf);
      let q = kk / 4u;
      let j = kk % 4u;
      sK[t * RK + q][j] = w.x;
      sK[(t + 1u) * RK + q][j] = w.y;
      sK[(t + 2u) * RK + q][j] = w.z;
      sK[(t + 3u) * RK + q][j] = w.w;
      if (m == 0u) { sGam[q][j] = before + g.x + g.y + g.z + g.w + after; }
    }
    workgroupBarrier();
    if (act) {
      let d = exp(sGam[tr]);
      gam += sGam[tr];
      l0 *= d.x;
      l1 *= d.y;
      l2 *= d.z;
      l3 *= d.w;
      for (var t = 0u; t < CT; t++) {
        let a = sK[t * RK + tr];
        let b = sV[t * RV + tc];
        l0 = fma(vec4f(a.x), b, l0);
        l1 = fma(vec4f(a.y), b, l1);
        l2 = fma(vec4f(a.z), b, l2);
        l3 = fma(vec4f(a.w), b, l3);
      }
    }
    workgroupBarrier();
  }
  if (!act) { return; }
  let KVZ = K * V + K;
  let nseg = (p.NC + CPS - 1u) / CPS;
  let base = select(bh * nseg + s, bh * p.NC + s * CPS, STATES) * KVZ;
  store_row(base, 4u * tr, 4u * tc, l0);
  store_row(base, 4u * tr + 1u, 4u * tc, l1);
  store_row(base, 4u * tr + 2u, 4u * tc, l2);
  store_row(base, 4u * tr + 3u, 4u * tc, l3);
  if (tc == 0u) {
    for (var i = 0u; i < 4u; i++) {
      if (4u * tr + i < K) { ws[base + K * V + 4u * tr + i] = gam[i]; }
    }
  }
}

// The gates of tokens 4m … 4m+3 of the tile for key kk (0 past the tile or past K).
fn gates(bh: u32, t0: u32, len: u32, m: u32, kk: u32) -> vec4f {
  var g = vec4f(0.0);
  if (kk >= K) { return g; }
  let t = 4u * m;
  let r = row_base(bh, t0, K) + kk;
  let stride = p.H * K;
  if (t < len) { g.x = ld_g(r + t * stride); }
  if (t + 1u < len) { g.y = ld_g(r + (t + 1u) * stride); }
  if (t + 2u < len) { g.z = ld_g(r + (t + 2u) * stride); }
  if (t + 3u < len) { g.w = ld_g(r + (t + 3u) * stride); }
  return g;
}

fn store_row(base: u32, row: u32, col: u32, x: vec4f) {
  if (row >= K) { return; }
  let at = base + row * V + col;
  if (col < V) { ws[at] = x.x; }
  if (col + 1u < V) { ws[at + 1u] = x.y; }
  if (col + 2u < V) { ws[at + 2u] = x.z; }
  if (col + 3u < V) { ws[at + 3u] = x.w; }
}
