// Pass 2: per head, an exclusive prefix over chunks of ws (state and key sum), starting from
// h0/z0; the totals become final_state and final_z. One invocation per state element, walking
// the chunks in order; loads are batched so several are in flight at once. With CPS > 1 (the
// segmented forward of fwdbwd, la.fwd_seg = 2) ws keeps one slot per chunk but only every CPS-th
// holds an entry (a segment's): the prefix walks those ⌈NC/CPS⌉ slots.
override WG: u32 = 256;
override NORMALIZE: bool = true;
override CPS: u32 = 1;

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
  let NE = (p.NC + CPS - 1u) / CPS;  // entries walked
  let S = CPS * KVZ;  // their stride
  // 8 loads in flight, held in two vec4s (constant indices: no private array to spill).
  var n = 0u;
  for (; n + 8u <= NE; n += 8u) {
    let at = base + n * S;
    let d0 = vec4f(ws[at], ws[at + S], ws[at + 2u * S], ws[at + 3u * S]);
    let d1 = vec4f(ws[at + 4u * S], ws[at + 5u * S], ws[at + 6u * S], ws[at + 7u * S]);
    ws[at] = run;
    run += d0.x;
    ws[at + S] = run;
    run += d0.y;
    ws[at + 2u * S] = run;
    run += d0.z;
    ws[at + 3u * S] = run;
    run += d0.w;
    ws[at + 4u * S] = run;
    run += d1.x;
    ws[at + 5u * S] = run;
    run += d1.y;
    ws[at + 6u * S] = run;
    run += d1.z;
    ws[at + 7u * S] = run;
    run += d1.w;
  }
  for (; n < NE; n++) {
    let d = ws[base + n * S];
    ws[base + n * S] = run;
    run += d;
  }
  if (e < K * V) {
    final_state[bh * K * V + e] = run;
  } else if (NORMALIZE) {
    final_z[bh * K + e - K * V] = run;
  }
}
