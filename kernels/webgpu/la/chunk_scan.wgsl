// Pass 2: per head, an exclusive prefix over chunks of ws (state and key sum), starting from
// h0/z0; the totals become final_state and final_z. One invocation per state element, walking
// the chunks in order; loads are batched so several are in flight at once.
override WG: u32 = 256;
override NORMALIZE: bool = true;

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
  // 8 loads in flight, held in two vec4s (constant indices: no private array to spill).
  var n = 0u;
  for (; n + 8u <= p.NC; n += 8u) {
    let at = base + n * KVZ;
    let d0 = vec4f(ws[at], ws[at + KVZ], ws[at + 2u * KVZ], ws[at + 3u * KVZ]);
    let d1 = vec4f(ws[at + 4u * KVZ], ws[at + 5u * KVZ], ws[at + 6u * KVZ], ws[at + 7u * KVZ]);
    ws[at] = run;
    run += d0.x;
    ws[at + KVZ] = run;
    run += d0.y;
    ws[at + 2u * KVZ] = run;
    run += d0.z;
    ws[at + 3u * KVZ] = run;
    run += d0.w;
    ws[at + 4u * KVZ] = run;
    run += d1.x;
    ws[at + 5u * KVZ] = run;
    run += d1.y;
    ws[at + 6u * KVZ] = run;
    run += d1.z;
    ws[at + 7u * KVZ] = run;
    run += d1.w;
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
