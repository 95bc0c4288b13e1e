// Segmented forward, pass 3, version 2 (`la.out` = 2): per (segment, head) the outputs, L tokens
// per step, as seg_out.wgsl computes them, with every invocation in every phase and larger
// register tiles. The host (seg_fwd.ts outV2Source) prepends the constants below and the
// vectorized loaders (ldraw_q/k/v, cvt_q/k/v, st4_o); K and V are padded to D4 = 16 vec4 columns
// in workgroup memory (zero past K, V), so K, V ≤ 64.
// Per step (q, k, v of the step in workgroup memory, S and z before it in sS, sZ):
//   phase 1: A = tril(φ(Q)φ(K)ᵀ) → sA (A tiles AR × 4·AC4); S += φ(K)ᵀV in registers (S tiles
//            SR × 4·SC4, one per invocation, kept for the whole segment); z += Σφ(k); the
//            next step's q, k, v are loaded from global memory into registers (prefetch);
//   phase 2: O = φ(Q)·S + A·V (O tiles OR × 4·OC4, the causal part skipped past the diagonal
//            block), den = φ(Q)·z + rowsum(A) (one row per invocation lid < L);
//   phase 3: o stored; S, z and the prefetched next step into workgroup memory.
// Constants from the host: L, NT, D4, KQ4 (⌈K/4⌉), VQ4, SR, SC4, AR, AC4, OR, OC4, PF (prefetch
// vec4s per invocation per tensor), SEGT, NORMALIZE; aliases QRaw, VRaw.

var<workgroup> sQ: array<vec4f, L * D4>;       // φ(q) [L][D4]
var<workgroup> sK: array<vec4f, L * D4>;       // φ(k) [L][D4]
var<workgroup> sV: array<vec4f, L * D4>;       // v [L][D4]
var<workgroup> sS: array<vec4f, 4u * D4 * D4>; // state before the step [4·D4][D4]
var<workgroup> sA: array<vec4f, L * (L / 4u)>; // masked scores [L][L/4]
var<workgroup> sZ: array<vec4f, D4>;           // key sum before the step
var<workgroup> sD: array<f32, L>;              // denominators of the step's rows

const SGRID_C: u32 = D4 / SC4;
const AGRID_C: u32 = (L / 4u) / AC4;
const AGRID: u32 = (L / AR) * AGRID_C;
const OGRID_C: u32 = D4 / OC4;
const OGRID: u32 = (L / OR) * OGRID_C;

fn mac4(o: vec4f, a: vec4f, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) -> vec4f {
  return fma(vec4f(a.w), b3, fma(vec4f(a.z), b2, fma(vec4f(a.y), b1, fma(vec4f(a.x), b0, o))));
}

fn phi4(x: vec4f) -> vec4f {
  return select(exp(x), x + 1.0, x > vec4f(0.0));
}

// Columns 4·d4 … 4·d4 + 3 that lie inside n, as 1.0 / 0.0.
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
  let base = (bh * p.NC + seg) * (K * V + K);
  // S tile: rows SR·kr …, vec4 columns SC4·sc …
  let kr = lid / SGRID_C;
  let sc = lid % SGRID_C;
  // A tile: rows AR·ar …, vec4 columns AC4·ac …
  let ar = lid / AGRID_C;
  let ac = lid % AGRID_C;
  let isA = lid < AGRID;
  // O tile: rows OR·orb …, vec4 columns OC4·oc …
  let orb = lid / OGRID_C;
  let oc = lid % OGRID_C;
  let isO = lid < OGRID && OC4 * oc < VQ4;

  // Seed the state from the prefix before this segment.
  var s: array<vec4f, SR * SC4>;
  for (var i = 0u; i < SR; i++) {
    let k = SR * kr + i;
    for (var j = 0u; j < SC4; j++) {
      let c4 = SC4 * sc + j;
      var x = vec4f(0.0);
      if (k < K) {
        for (var jj = 0u; jj < 4u; jj++) {
          if (4u * c4 + jj < V) { x[jj] = ws[base + k * V + 4u * c4 + jj]; }
        }
      }
      s[i * SC4 + j] = x;
      sS[k * D4 + c4] = x;
    }
  }
  var z = vec4f(0.0);
  if (lid < D4) {
    for (var jj = 0u; jj < 4u; jj++) {
      if (4u * lid + jj < K) { z[jj] = ws[base + K * V + 4u * lid + jj]; }
    }
    sZ[lid] = z;
  }

  var pq: array<QRaw, PF>;
  var pk: array<QRaw, PF>;
  var pv: array<VRaw, PF>;
  prefetch(bh, tbeg, min(L, tend - tbeg), lid, &pq, &pk, &pv);
  store_step(min(L, tend - tbeg), lid, &pq, &pk, &pv);
  workgroupBarrier();

  for (var t0 = tbeg; t0 < tend; t0 += L) {
    let len = min(L, tend - t0);
    let tn = t0 + L;
    let nlen = select(0u, min(L, tend - tn), tn < tend);
    if (nlen > 0u) { prefetch(bh, tn, nlen, lid, &pq, &pk, &pv); }

    // Phase 1: scores; state and key-sum updates in registers.
    if (isA) {
      var a = array<vec4f, AR * AC4>();  // explicit: zero every step
      let r0 = AR * ar;
      let c0 = 4u * AC4 * ac;  // first key token of the tile
      if (c0 <= r0 + AR - 1u) {
        for (var k4 = 0u; k4 < KQ4; k4++) {
          var x: array<vec4f, AR>;
          for (var i = 0u; i < AR; i++) { x[i] = sQ[(r0 + i) * D4 + k4]; }
          for (var j = 0u; j < AC4; j++) {
            let y0 = sK[(c0 + 4u * j) * D4 + k4];
            let y1 = sK[(c0 + 4u * j + 1u) * D4 + k4];
            let y2 = sK[(c0 + 4u * j + 2u) * D4 + k4];
            let y3 = sK[(c0 + 4u * j + 3u) * D4 + k4];
            for (var i = 0u; i < AR; i++) {
              a[i * AC4 + j] += vec4f(dot(x[i], y0), dot(x[i], y1), dot(x[i], y2), dot(x[i], y3));
            }
          }
        }
      }
      for (var i = 0u; i < AR; i++) {
        let r = r0 + i;
        for (var j = 0u; j < AC4; j++) {
          let t = vec4u(c0 + 4u * j) + vec4u(0u, 1u, 2u, 3u);
          sA[r * (L / 4u) + AC4 * ac + j] = select(vec4f(0.0), a[i * AC4 + j], t <= vec4u(r));
        }
      }
    }
    for (var t = 0u; t < L; t++) {
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
    let zold = z;
    if (NORMALIZE && lid < D4) {
      for (var t = 0u; t < L; t++) { z += sK[t * D4 + lid]; }
    }
    workgroupBarrier();

    // Phase 2: outputs (inter-step and causal intra-step terms) and denominators.
    var o = array<vec4f, OR * OC4>();  // explicit: zero every step
    if (isO) {
      let r0 = OR * orb;
      for (var k4 = 0u; k4 < KQ4; k4++) {
        var b: array<vec4f, 4u * OC4>;
        for (var jj = 0u; jj < 4u; jj++) {
          for (var j = 0u; j < OC4; j++) {
            b[jj * OC4 + j] = sS[(4u * k4 + jj) * D4 + OC4 * oc + j];
          }
        }
        for (var i = 0u; i < OR; i++) {
          let x = sQ[(r0 + i) * D4 + k4];
          for (var j = 0u; j < OC4; j++) {
            o[i * OC4 + j] = mac4(o[i * OC4 + j], x, b[j], b[OC4 + j], b[2u * OC4 + j],
              b[3u * OC4 + j]);
          }
        }
      }
      let last4 = (r0 + OR - 1u) / 4u;
      for (var s4 = 0u; s4 <= last4; s4++) {
        var b: array<vec4f, 4u * OC4>;
        for (var jj = 0u; jj < 4u; jj++) {
          for (var j = 0u; j < OC4; j++) {
            b[jj * OC4 + j] = sV[(4u * s4 + jj) * D4 + OC4 * oc + j];
          }
        }
        for (var i = 0u; i < OR; i++) {
          let x = sA[(r0 + i) * (L / 4u) + s4];
          for (var j = 0u; j < OC4; j++) {
            o[i * OC4 + j] = mac4(o[i * OC4 + j], x, b[j], b[OC4 + j], b[2u * OC4 + j],
              b[3u * OC4 + j]);
          }
        }
      }
    }
    if (NORMALIZE && lid < L) {
      var den = 0.0;
      for (var k4 = 0u; k4 < KQ4; k4++) { den += dot(sQ[lid * D4 + k4], sZ[k4]); }
      for (var s4 = 0u; s4 <= lid / 4u; s4++) { den += dot(sA[lid * (L / 4u) + s4], vec4f(1.0)); }
      sD[lid] = den;
    }
    workgroupBarrier();

    // Phase 3: o out; the next step's operands in.
    if (isO) {
      let r0 = OR * orb;
      for (var i = 0u; i < OR; i++) {
        let r = r0 + i;
        if (r < len) {
          var inv = p.scale;
          if (NORMALIZE) { inv = 1.0 / (sD[r] + 1e-6); }
          let rb = row_base(bh, t0 + r, V);
          for (var j = 0u; j < OC4; j++) {
            let c4 = OC4 * oc + j;
            if (c4 < VQ4) { st4_o(rb, c4, o[i * OC4 + j] * inv); }
          }
        }
      }
    }
    for (var i = 0u; i < SR; i++) {
      for (var j = 0u; j < SC4; j++) { sS[(SR * kr + i) * D4 + SC4 * sc + j] = s[i * SC4 + j]; }
    }
    if (NORMALIZE && lid < D4) { sZ[lid] = z; }
    if (nlen > 0u) { store_step(nlen, lid, &pq, &pk, &pv); }
    workgroupBarrier();
  }
}

// Raw q, k, v of tokens t0 … t0 + len − 1 into registers: element e = lid + i·NT of the
// [L][D4] step tile.
fn prefetch(
  bh: u32,
  t0: u32,
  len: u32,
  lid: u32,
  pq: ptr<function, array<QRaw, PF>>,
  pk: ptr<function, array<QRaw, PF>>,
  pv: ptr<function, array<VRaw, PF>>,
) {
  for (var i = 0u; i < PF; i++) {
    let e = lid + i * NT;
    let t = e / D4;
    let d4 = e % D4;
    var xq = QRaw();
    var xk = QRaw();
    var xv = VRaw();
    if (t < len) {
      if (d4 < KQ4) {
        let rb = row_base(bh, t0 + t, K);
        xq = ldraw_q(rb, d4);
        xk = ldraw_k(rb, d4);
      }
      if (d4 < VQ4) { xv = ldraw_v(row_base(bh, t0 + t, V), d4); }
    }
    (*pq)[i] = xq;
    (*pk)[i] = xk;
    (*pv)[i] = xv;
  }
}

// The prefetched registers as φ(q), φ(k), v into workgroup memory, zero past len, K and V.
fn store_step(
  len: u32,
  lid: u32,
  pq: ptr<function, array<QRaw, PF>>,
  pk: ptr<function, array<QRaw, PF>>,
  pv: ptr<function, array<VRaw, PF>>,
) {
  for (var i = 0u; i < PF; i++) {
    let e = lid + i * NT;
    if (e < L * D4) {
      let t = e / D4;
      let d4 = e % D4;
      let ok = t < len;
      let mk = select(vec4f(0.0), colmask(d4, K), ok);
      let mv = select(vec4f(0.0), colmask(d4, V), ok);
      sQ[e] = select(vec4f(0.0), phi4(cvt_q((*pq)[i])), mk > vec4f(0.0));
      sK[e] = select(vec4f(0.0), phi4(cvt_k((*pk)[i])), mk > vec4f(0.0));
      sV[e] = cvt_v((*pv)[i]) * mv;
    }
  }
}
