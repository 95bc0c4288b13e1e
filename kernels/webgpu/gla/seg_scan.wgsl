// gla segmented forward, pass 2: per head and state element (k, v), the exclusive decayed prefix
// over segments, S_s = diag(exp(Γ_s)) S_{s−1} + L_s from h0; ws's L_s becomes the state at the
// start of segment s and the last S is final_state. One invocation per element walks the
// segments in order, four loads in flight at a time.
override WG: u32 = 256;
override CPS: u32 = 16;
// fwdbwd with gla.fwd_seg = 2: ws has one slot per chunk, segment s in chunk s·CPS's slot.
override STATES: bool = false;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  let bh = gid.y;
  let KVZ = K * V + K;
  if (e >= K * V) { return; }
  let nseg = (p.NC + CPS - 1u) / CPS;
  var run = 0.0;
  if (p.has_h0 != 0u) { run = h0[bh * K * V + e]; }
  let base = select(bh * nseg, bh * p.NC, STATES) * KVZ;
  let S = select(1u, CPS, STATES) * KVZ;  // stride between segments' slots
  let kr = K * V + e / V;
  var n = 0u;
  for (; n + 4u <= nseg; n += 4u) {
    let at = base + n * S;
    let d = vec4f(ws[at + e], ws[at + S + e], ws[at + 2u * S + e], ws[at + 3u * S + e]);
    let g = exp(vec4f(ws[at + kr], ws[at + S + kr], ws[at + 2u * S + kr], ws[at + 3u * S + kr]));
    ws[at + e] = run;
    run = fma(g.x, run, d.x);
    ws[at + S + e] = run;
    run = fma(g.y, run, d.y);
    ws[at + 2u * S + e] = run;
    run = fma(g.z, run, d.z);
    ws[at + 3u * S + e] = run;
    run = fma(g.w, run, d.w);
  }
  for (; n < nseg; n++) {
    let at = base + n * S;
    let d = ws[at + e];
    let g = ws[at + kr];
    ws[at + e] = run;
    run = fma(exp(g), run, d);
  }
  final_state[bh * K * V + e] = run;
}
