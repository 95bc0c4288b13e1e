// gla backward pass 2: per head and state element (k, v), chunks in reverse:
// dS_before_n = exp(Γ_n) ⊙ dS_after_n + (the chunk's own term in wsd), from dS = 0 after the
// last chunk (final_state is not in the loss). wsd's entries become dS_after_n; the total is
// dh0 where h0 was given. Γ_n is in ws (written by the forward's pass 1). Loads are batched 4
// chunks at a time: the stores into wsd would otherwise keep each load waiting for the last.
override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  let bh = gid.y;
  let KVZ = K * V + K;
  if (e >= K * V) { return; }
  let base = bh * p.NC * KVZ;
  let gam = base + K * V + e / V;
  var run = 0.0;
  var n = p.NC;
  for (; n >= 4u; n -= 4u) {
    let at = base + (n - 4u) * KVZ;
    let d = vec4f(wsd[at + e], wsd[at + KVZ + e], wsd[at + 2u * KVZ + e], wsd[at + 3u * KVZ + e]);
    let g = (n - 4u) * KVZ + gam;
    let a = exp(vec4f(ws[g], ws[g + KVZ], ws[g + 2u * KVZ], ws[g + 3u * KVZ]));
    wsd[at + 3u * KVZ + e] = run;
    run = fma(a.w, run, d.w);
    wsd[at + 2u * KVZ + e] = run;
    run = fma(a.z, run, d.z);
    wsd[at + KVZ + e] = run;
    run = fma(a.y, run, d.y);
    wsd[at + e] = run;
    run = fma(a.x, run, d.x);
  }
  for (; n > 0u; n--) {
    let at = base + (n - 1u) * KVZ;
    let d = wsd[at + e];
    wsd[at + e] = run;
    run = fma(exp(ws[at + K * V + e / V]), run, d);
  }
  if (p.has_h0 != 0u) { dh0[bh * K * V + e] = run; }
}
