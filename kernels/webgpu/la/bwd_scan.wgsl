// la backward pass 2: per head and element of (dS, dz), the exclusive suffix sum over chunks of
// wsd: each chunk's entry becomes the gradient of the state after that chunk; the total (the
// gradient of the state before chunk 0) is dh0 / dz0 where those inputs were given.
override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  let bh = gid.y;
  let KVZ = K * V + K;
  if (e >= KVZ) { return; }
  let base = bh * p.NC * KVZ + e;
  var run = 0.0;
  for (var n = p.NC; n > 0u; n--) {
    let at = base + (n - 1u) * KVZ;
    let d = wsd[at];
    wsd[at] = run;
    run += d;
  }
  if (e < K * V) {
    if (p.has_h0 != 0u) { dh0[bh * K * V + e] = run; }
  } else if (p.has_z0 != 0u) {
    dz0[bh * K + e - K * V] = run;
  }
}
