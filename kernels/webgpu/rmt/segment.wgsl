// Attention of one segment's queries over [memory; segment], for every head. TOKENS: workgroup
// x takes QB token queries of segment x / ⌈L/QB⌉ (causal over the segment, plus all memory
// rows), all segments in one dispatch. Otherwise: QB memory-row queries of segment wsctr[0]
// (over all memory rows and the whole segment), writing the next memory slot (and final_state
// after the last segment); these run one segment per dispatch, in order. One invocation per
// query row, online softmax over key tiles of KB rows in workgroup memory; keys/values j < M
// are memory rows, j ≥ M the segment's tokens.
override QB: u32 = 64;
const NEG: f32 = -3.0e38;

var<workgroup> sK: array<f32, KB * D>;
var<workgroup> sV: array<f32, KB * D>;
var<workgroup> sSeg: u32;

@compute @workgroup_size(QB)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tokBlocks = (p.L + QB - 1u) / QB;
  var seg: u32;
  var blk: u32;
  if (TOKENS) {
    seg = wid.x / tokBlocks;
    blk = wid.x % tokBlocks;
  } else {
    if (lid == 0u) { sSeg = wsctr[0]; }
    seg = workgroupUniformLoad(&sSeg);
    blk = wid.x;
  }
  let bh = wid.y;
  let b = bh / p.H;
  let h = bh % p.H;
  let s0 = seg * p.L;
  let ns = min(p.L, p.T - s0);
  let mem = (seg * p.BH + bh) * p.M * D;
  let isMem = !TOKENS;
  var row: u32;
  var valid: bool;
  var limit: u32;  // keys j < limit are visible to this row
  var nk: u32;     // keys the workgroup walks (the most any of its rows sees)
  if (isMem) {
    row = blk * QB + lid;
    valid = row < p.M;
    limit = p.M + ns;
    nk = p.M + ns;
  } else {
    row = blk * QB + lid;
    valid = row < ns;
    limit = p.M + row + 1u;
    nk = p.M + min(ns, (blk + 1u) * QB);
  }
  var qv: array<f32, D>;
  var acc: array<f32, D>;
  for (var d = 0u; d < D; d++) {
    var x = 0.0;
    if (valid) {
      if (isMem) {
        x = wsmem[mem + row * D + d];
      } else {
        x = ld_q(((b * p.T + s0 + row) * p.H + h) * D + d);
      }
    }
    qv[d] = x * p.scale;
    acc[d] = 0.0;
  }
  var m = NEG;
  var l = 0.0;
  for (var j0 = 0u; j0 < nk; j0 += KB) {
    workgroupBarrier();
    for (var e = lid; e < KB * D; e += QB) {
      let j = j0 + e / D;
      let d = e % D;
      var xk = 0.0;
      var xv = 0.0;
      if (j < p.M) {
        xk = wsmem[mem + j * D + d];
        xv = xk;
      } else if (j < nk) {
        let r = ((b * p.T + s0 + j - p.M) * p.H + h) * D + d;
        xk = ld_k(r);
        xv = ld_v(r);
      }
      sK[e] = xk;
      sV[e] = xv;
    }
    workgroupBarrier();
    var sc: array<f32, KB>;
    var tmax = m;
    for (var jj = 0u; jj < KB; jj++) {
      var dot = 0.0;
      for (var d = 0u; d < D; d++) { dot = fma(qv[d], sK[jj * D + d], dot); }
      let seen = j0 + jj < limit;
      sc[jj] = select(NEG, dot, seen);
      if (seen) { tmax = max(tmax, dot); }
    }
    let corr = exp(m - tmax);
    l *= corr;
    for (var d = 0u; d < D; d++) { acc[d] *= corr; }
    for (var jj = 0u; jj < KB; jj++) {
      let pj = select(0.0, exp(sc[jj] - tmax), j0 + jj < limit);
      l += pj;
      for (var d = 0u; d < D; d++) { acc[d] = fma(pj, sV[jj * D + d], acc[d]); }
    }
    m = tmax;
  }
  if (!valid) { return; }
  let inv = 1.0 / l;
  if (isMem) {
    let next = ((seg + 1u) * p.BH + bh) * p.M * D + row * D;
    for (var d = 0u; d < D; d++) { wsmem[next + d] = acc[d] * inv; }
    if (seg + 1u == p.S) {
      for (var d = 0u; d < D; d++) {
        final_state[((b * p.M + row) * p.H + h) * D + d] = acc[d] * inv;
      }
    }
  } else {
    let o = ((b * p.T + s0 + row) * p.H + h) * D;
    for (var d = 0u; d < D; d += 2u) {
      st2_o(o + d, acc[d] * inv, acc[min(d + 1u, D - 1u)] * inv, d + 1u < D);
    }
  }
}
