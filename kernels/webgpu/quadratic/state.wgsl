// quadratic la pass 4: final_state = h0 + Σ_t φ(k_t) v_tᵀ and final_z = z0 + Σ_t φ(k_t), one
// invocation per element (e < K·V: state; else key sum) summing over all tokens.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  let bh = gid.y;
  if (e >= K * V + K) { return; }
  if (e < K * V) {
    let k = e / V;
    let v = e % V;
    var acc = 0.0;
    if (p.has_h0 != 0u) { acc = h0[bh * K * V + e]; }
    for (var t = 0u; t < p.T; t++) {
      acc = fma(phi(ld_k(row_base(bh, t, K) + k)), ld_v(row_base(bh, t, V) + v), acc);
    }
    final_state[bh * K * V + e] = acc;
  } else if ((p.flags & 2u) != 0u) {
    let k = e - K * V;
    var acc = 0.0;
    if (p.has_z0 != 0u) { acc = z0[bh * K + k]; }
    for (var t = 0u; t < p.T; t++) { acc += phi(ld_k(row_base(bh, t, K) + k)); }
    final_z[bh * K + k] = acc;
  }
}
