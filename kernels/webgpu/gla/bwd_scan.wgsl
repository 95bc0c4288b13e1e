// gla backward pass 2: per head and state element (k, v), chunks in reverse:
// dS_before_n = exp(Γ_n) ⊙ dS_after_n + (the chunk's own term in wsd), from dS = 0 after the
// last chunk (final_state is not in the loss). wsd's entries become dS_after_n; the total is
// dh0 where h0 was given. Γ_n is in ws (written by the forward's pass 1).
override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  let bh = gid.y;
  let KVZ = K * V + K;
  if (e >= K * V) { return; }
  let base = bh * p.NC * KVZ;
  let kr = e / V;
  var run = 0.0;
  for (var n = p.NC; n > 0u; n--) {
    let at = base + (n - 1u) * KVZ;
    let d = wsd[at + e];
    wsd[at + e] = run;
    run = fma(exp(ws[at + K * V + kr]), run, d);
  }
  if (p.has_h0 != 0u) { dh0[bh * K * V + e] = run; }
}
