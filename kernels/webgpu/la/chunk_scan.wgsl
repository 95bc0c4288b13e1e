// Pass 2: per head, an exclusive prefix over chunks of ws (state and key sum), starting from
// h0/z0; the totals become final_state and final_z. Each state element's walk is cut into Q parts
// of consecutive entries, one invocation each (WG / Q elements a workgroup): with Q > 1 every part
// first sums its entries, the parts' sums meet in workgroup memory, and then each part walks its
// entries from h0/z0 plus the sums of the parts before it. One invocation walking every entry
// (Q = 1) left 8 warps an SM, each waiting out a load latency per batch: 0.31 ms for the 512
// segments of 1M tokens (H100, session 8). Loads are batched so several are in flight at once.
// With CPS > 1 (the segmented forward of fwdbwd, la.fwd_seg = 2) ws keeps one slot per chunk but
// only every CPS-th holds an entry (a segment's): the prefix walks those ⌈NC/CPS⌉ slots.
override WG: u32 = 256;
override Q: u32 = 1;  // parts of each walk (divides WG)
override NORMALIZE: bool = true;
override CPS: u32 = 1;

var<workgroup> part_sum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let EW = WG / Q;
  let part = lid / EW;
  let e = wid.x * EW + lid % EW;
  let bh = wid.y;
  let KVZ = K * V + K;
  let live = e < KVZ;
  let base = bh * p.NC * KVZ + min(e, KVZ - 1u);
  let NE = (p.NC + CPS - 1u) / CPS;  // entries walked
  let S = CPS * KVZ;  // their stride
  let per = (NE + Q - 1u) / Q;
  let n0 = min(part * per, NE);
  let n1 = min(n0 + per, NE);
  var run = 0.0;
  if (Q > 1u) {
    // No stores in this walk, so nothing orders one batch's loads behind the last one's.
    var a = vec4f(0.0);
    var b = vec4f(0.0);
    var n = n0;
    if (live) {
      for (; n + 8u <= n1; n += 8u) {
        let at = base + n * S;
        a += vec4f(ws[at], ws[at + S], ws[at + 2u * S], ws[at + 3u * S]);
        b += vec4f(ws[at + 4u * S], ws[at + 5u * S], ws[at + 6u * S], ws[at + 7u * S]);
      }
      for (; n < n1; n++) { a.x += ws[base + n * S]; }
    }
    let ab = a + b;
    part_sum[lid] = (ab.x + ab.y) + (ab.z + ab.w);
    workgroupBarrier();
    for (var j = 0u; j < part; j++) { run += part_sum[j * EW + lid % EW]; }
  }
  if (!live) { return; }
  if (e < K * V) {
    if (p.has_h0 != 0u) { run += h0[bh * K * V + e]; }
  } else if (p.has_z0 != 0u) {
    run += z0[bh * K + e - K * V];
  }
  // 8 loads in flight, held in two vec4s (constant indices: no private array to spill).
  var n = n0;
  for (; n + 8u <= n1; n += 8u) {
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
  for (; n < n1; n++) {
    let d = ws[base + n * S];
    ws[base + n * S] = run;
    run += d;
  }
  if (part != Q - 1u) { return; }
  if (e < K * V) {
    final_state[bh * K * V + e] = run;
  } else if (NORMALIZE) {
    final_z[bh * K + e - K * V] = run;
  }
}
