// la backward pass 2: per head and element of (dS, dz), the exclusive suffix sum over chunks of
// wsd: each chunk's entry becomes the gradient of the state after that chunk; the total (the
// gradient of the state before chunk 0) is dh0 / dz0 where those inputs were given. Loads are
// batched 8 chunks at a time (as in chunk_scan.wgsl): the stores into the same buffer would
// otherwise keep each load waiting for the previous chunk's.
override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  let bh = gid.y;
  let KVZ = K * V + K;
  if (e >= KVZ) { return; }
  let base = bh * p.NC * KVZ + e;
  var run = 0.0;
  var n = p.NC;
  for (; n >= 8u; n -= 8u) {
    let at = base + (n - 8u) * KVZ;
    let d0 = vec4f(wsd[at], wsd[at + KVZ], wsd[at + 2u * KVZ], wsd[at + 3u * KVZ]);
    let d1 = vec4f(wsd[at + 4u * KVZ], wsd[at + 5u * KVZ], wsd[at + 6u * KVZ], wsd[at + 7u * KVZ]);
    wsd[at + 7u * KVZ] = run;
    run += d1.w;
    wsd[at + 6u * KVZ] = run;
    run += d1.z;
    wsd[at + 5u * KVZ] = run;
    run += d1.y;
    wsd[at + 4u * KVZ] = run;
    run += d1.x;
    wsd[at + 3u * KVZ] = run;
    run += d0.w;
    wsd[at + 2u * KVZ] = run;
    run += d0.z;
    wsd[at + KVZ] = run;
    run += d0.y;
    wsd[at] = run;
    run += d0.x;
  }
  for (; n > 0u; n--) {
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
