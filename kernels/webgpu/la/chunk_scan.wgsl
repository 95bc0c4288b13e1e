// Pass 2: per head, an exclusive prefix over chunks of ws (state and key sum), starting from
// h0/z0; the totals become final_state and final_z. One invocation per state element, walking
// the chunks in order; loads are batched so several are in flight at once.
override WG: u32 = 256;
override NORMALIZE: bool = true;
const UNROLL: u32 = 8u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  let bh = gid.y;
  let KVZ = K * V + K;
  if (e >= KVZ) { return; }
  var run = 0.0;
  if (e < K * V) {
    if (p.has_h0 != 0u) { run = h0[bh * K * V + e]; }
  } else if (p.has_z0 != 0u) {
    run = z0[bh * K + e - K * V];
  }
  let base = gid.y * p.NC * KVZ + e;
  var n = 0u;
  for (; n + UNROLL <= p.NC; n += UNROLL) {
    var d: array<f32, UNROLL>;
    for (var u = 0u; u < UNROLL; u++) { d[u] = ws[base + (n + u) * KVZ]; }
    for (var u = 0u; u < UNROLL; u++) {
      ws[base + (n + u) * KVZ] = run;
      run += d[u];
    }
  }
  for (; n < p.NC; n++) {
    let d = ws[base + n * KVZ];
    ws[base + n * KVZ] = run;
    run += d;
  }
  if (e < K * V) {
    final_state[bh * K * V + e] = run;
  } else if (NORMALIZE) {
    final_z[bh * K + e - K * V] = run;
  }
}
