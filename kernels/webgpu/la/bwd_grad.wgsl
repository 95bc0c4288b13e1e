// la backward pass 3: per (chunk n, head bh), from S, z before the chunk (ws), dS, dz after it
// (wsd after the suffix scan) and ∂N, ∂D (wsn):
//   dV = Pᵀ ∂N + Φk dS                         (with P in workgroup memory)
//   dP = tril(∂N Vᵀ + ∂D 1ᵀ)                    (replaces P)
//   dΦq = ∂N Sᵀ + ∂D zᵀ + dP Φk;  dq = dΦq ⊙ φ′(q)
//   dΦk = dPᵀ Φq + V dSᵀ + 1 dzᵀ;  dk = dΦk ⊙ φ′(k)
// One invocation writes a pair of adjacent elements of a row (a whole bf16 word).
override WG: u32 = 256;

var<workgroup> sQ: array<f32, C * K>;
var<workgroup> sK: array<f32, C * K>;
var<workgroup> sP: array<f32, C * C>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let bh = wid.y;
  let t0 = n * C;
  let len = min(C, p.T - t0);
  let KVZ = K * V + K;
  let st = (bh * p.NC + n) * KVZ;
  let nb = (bh * p.NC + n) * C * (V + 1u);
  load_phi(bh, t0, len, lid);
  workgroupBarrier();
  build_p(len, lid);
  workgroupBarrier();
  let VP = (V + 1u) / 2u;
  for (var e = lid; e < len * VP; e += WG) {
    let j = e / VP;
    let v0 = 2u * (e % VP);
    let v1 = min(v0 + 1u, V - 1u);
    var a0 = 0.0;
    var a1 = 0.0;
    for (var i = j; i < len; i++) {
      let pij = sP[i * C + j];
      a0 = fma(pij, wsn[nb + i * (V + 1u) + v0], a0);
      a1 = fma(pij, wsn[nb + i * (V + 1u) + v1], a1);
    }
    for (var k = 0u; k < K; k++) {
      let x = sK[j * K + k];
      a0 = fma(x, wsd[st + k * V + v0], a0);
      a1 = fma(x, wsd[st + k * V + v1], a1);
    }
    st2_dv(row_base(bh, t0 + j, V) + v0, a0, a1, v0 + 1u < V);
  }
  workgroupBarrier();
  for (var e = lid; e < C * C; e += WG) {
    let i = e / C;
    let j = e % C;
    var acc = 0.0;
    if (j <= i && i < len) {
      acc = wsn[nb + i * (V + 1u) + V];
      let rj = row_base(bh, t0 + j, V);
      for (var v = 0u; v < V; v++) { acc = fma(wsn[nb + i * (V + 1u) + v], ld_v(rj + v), acc); }
    }
    sP[e] = acc;
  }
  workgroupBarrier();
  let KP = (K + 1u) / 2u;
  for (var e = lid; e < len * KP; e += WG) {
    let i = e / KP;
    let k0 = 2u * (e % KP);
    let k1 = min(k0 + 1u, K - 1u);
    var q0 = ws[st + K * V + k0] * wsn[nb + i * (V + 1u) + V];
    var q1 = ws[st + K * V + k1] * wsn[nb + i * (V + 1u) + V];
    var c0 = wsd[st + K * V + k0];
    var c1 = wsd[st + K * V + k1];
    let rv = row_base(bh, t0 + i, V);
    for (var v = 0u; v < V; v++) {
      let dn = wsn[nb + i * (V + 1u) + v];
      q0 = fma(dn, ws[st + k0 * V + v], q0);
      q1 = fma(dn, ws[st + k1 * V + v], q1);
      let x = ld_v(rv + v);
      c0 = fma(x, wsd[st + k0 * V + v], c0);
      c1 = fma(x, wsd[st + k1 * V + v], c1);
    }
    for (var j = 0u; j <= i; j++) {
      let d = sP[i * C + j];
      q0 = fma(d, sK[j * K + k0], q0);
      q1 = fma(d, sK[j * K + k1], q1);
    }
    for (var j = i; j < len; j++) {
      let d = sP[j * C + i];
      c0 = fma(d, sQ[j * K + k0], c0);
      c1 = fma(d, sQ[j * K + k1], c1);
    }
    let rk = row_base(bh, t0 + i, K);
    st2_dq(rk + k0, q0 * dphi(ld_q(rk + k0)), q1 * dphi(ld_q(rk + k1)), k0 + 1u < K);
    st2_dk(rk + k0, c0 * dphi(ld_k(rk + k0)), c1 * dphi(ld_k(rk + k1)), k0 + 1u < K);
  }
}
