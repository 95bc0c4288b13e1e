// Segmented forward, pass 1, version 2 (`la.state` = 2): per (segment, head) the segment's local
// state ΔS = φ(K)ᵀV and Δz = Σφ(k) into ws, as seg_state.wgsl, with larger register tiles (SR
// state rows × SC4 vec4 columns per invocation, one tile each) and the next TT tokens loaded from
// global memory into registers while the current ones are summed. The host (seg_fwd.ts
// outV2Source) prepends the constants and loaders; K, V are padded to D4 = 16 vec4 columns.
// Constants: TT, NT, D4, KQ4, VQ4, SR, SC4, PF (vec4s per invocation per tensor), SEGT.

var<workgroup> sK: array<vec4f, TT * D4>;  // φ(k) [TT][D4]
var<workgroup> sV: array<vec4f, TT * D4>;  // v [TT][D4]

const SGRID_C: u32 = D4 / SC4;

fn phi4(x: vec4f) -> vec4f {
  return select(exp(x), x + 1.0, x > vec4f(0.0));
}

fn colmask(d4: u32, n: u32) -> vec4f {
  let j = vec4u(4u * d4) + vec4u(0u, 1u, 2u, 3u);
  return select(vec4f(0.0), vec4f(1.0), j < vec4u(n));
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let seg = wid.x;
  let bh = wid.y;
  let tbeg = seg * SEGT;
  let tend = min(tbeg + SEGT, p.T);
  let kr = lid / SGRID_C;
  let sc = lid % SGRID_C;
  var s = array<vec4f, SR * SC4>();
  var z = vec4f(0.0);
  var pk = array<QRaw, PF>();
  var pv = array<VRaw, PF>();
  prefetch(bh, tbeg, min(TT, tend - tbeg), lid, &pk, &pv);
  store_tile(min(TT, tend - tbeg), lid, &pk, &pv);
  workgroupBarrier();
  for (var t0 = tbeg; t0 < tend; t0 += TT) {
    let tn = t0 + TT;
    let nlen = select(0u, min(TT, tend - tn), tn < tend);
    if (nlen > 0u) { prefetch(bh, tn, nlen, lid, &pk, &pv); }
    for (var t = 0u; t < TT; t++) {
      var kk: array<vec4f, SR / 4u>;
      for (var i4 = 0u; i4 < SR / 4u; i4++) { kk[i4] = sK[t * D4 + (SR / 4u) * kr + i4]; }
      for (var j = 0u; j < SC4; j++) {
        let vv = sV[t * D4 + SC4 * sc + j];
        for (var i4 = 0u; i4 < SR / 4u; i4++) {
          let x = kk[i4];
          s[(4u * i4) * SC4 + j] = fma(vec4f(x.x), vv, s[(4u * i4) * SC4 + j]);
          s[(4u * i4 + 1u) * SC4 + j] = fma(vec4f(x.y), vv, s[(4u * i4 + 1u) * SC4 + j]);
          s[(4u * i4 + 2u) * SC4 + j] = fma(vec4f(x.z), vv, s[(4u * i4 + 2u) * SC4 + j]);
          s[(4u * i4 + 3u) * SC4 + j] = fma(vec4f(x.w), vv, s[(4u * i4 + 3u) * SC4 + j]);
        }
      }
    }
    if (lid < D4) {
      for (var t = 0u; t < TT; t++) { z += sK[t * D4 + lid]; }
    }
    workgroupBarrier();
    if (nlen > 0u) { store_tile(nlen, lid, &pk, &pv); }
    workgroupBarrier();
  }
  let base = (bh * p.NC + seg) * (K * V + K);
  for (var i = 0u; i < SR; i++) {
    let k = SR * kr + i;
    if (k < K) {
      for (var j = 0u; j < SC4; j++) {
        let c4 = SC4 * sc + j;
        let x = s[i * SC4 + j];
        for (var jj = 0u; jj < 4u; jj++) {
          if (4u * c4 + jj < V) { ws[base + k * V + 4u * c4 + jj] = x[jj]; }
        }
      }
    }
  }
  if (lid < D4) {
    for (var jj = 0u; jj < 4u; jj++) {
      if (4u * lid + jj < K) { ws[base + K * V + 4u * lid + jj] = z[jj]; }
    }
  }
}

// Raw k, v of tokens t0 … t0 + len − 1 into registers: element e = lid + i·NT of [TT][D4].
fn prefetch(
  bh: u32,
  t0: u32,
  len: u32,
  lid: u32,
  pk: ptr<function, array<QRaw, PF>>,
  pv: ptr<function, array<VRaw, PF>>,
) {
  for (var i = 0u; i < PF; i++) {
    let e = lid + i * NT;
    let t = e / D4;
    let d4 = e % D4;
    var xk = QRaw();
    var xv = VRaw();
    if (t < len) {
      if (d4 < KQ4) { xk = ldraw_k(row_base(bh, t0 + t, K), d4); }
      if (d4 < VQ4) { xv = ldraw_v(row_base(bh, t0 + t, V), d4); }
    }
    (*pk)[i] = xk;
    (*pv)[i] = xv;
  }
}

// The prefetched registers as φ(k), v into workgroup memory, zero past len, K and V.
fn store_tile(
  len: u32,
  lid: u32,
  pk: ptr<function, array<QRaw, PF>>,
  pv: ptr<function, array<VRaw, PF>>,
) {
  for (var i = 0u; i < PF; i++) {
    let e = lid + i * NT;
    if (e < TT * D4) {
      let t = e / D4;
      let d4 = e % D4;
      let ok = t < len;
      let mk = select(vec4f(0.0), colmask(d4, K), ok);
      sK[e] = select(vec4f(0.0), phi4(cvt_k((*pk)[i])), mk > vec4f(0.0));
      sV[e] = cvt_v((*pv)[i]) * select(vec4f(0.0), colmask(d4, V), ok);
    }
  }
}
