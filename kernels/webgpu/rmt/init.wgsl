// Memory of segment 0: mem (storage dtype) into slot 0 of wsmem as f32; the counter to 0.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  if (e == 0u) { wsctr[0] = 0u; }
  if (e >= p.BH * p.M * D) { return; }
  let bh = e / (p.M * D);
  let m = e / D % p.M;
  let d = e % D;
  wsmem[e] = ld_mem(((bh / p.H * p.M + m) * p.H + bh % p.H) * D + d);
}
