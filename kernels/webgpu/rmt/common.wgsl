// rmt forward (docs/ops.md): segments of L tokens, each attending (softmax) to the M memory
// rows and causally to itself; the memory is rewritten by attention of the memory rows over
// [memory; segment]. Layouts: q, k, v, o [B,T,H,D]; mem, final_state [B,M,H,D].
// Workspace wsmem [S+1][B·H][M][D] f32: slot s is the memory segment s sees (slot 0 = mem);
// wsctr[0] is the segment whose memory update runs, advanced by bump.wgsl between dispatches
// so that one pipeline serves every segment. D, KB (keys per tile) and TOKENS (which queries a
// pipeline takes) are WGSL consts written in front by the host, so that per-row register arrays
// can be sized by them.
struct Params {
  T: u32,
  H: u32,
  L: u32,   // segment length (≤ T)
  S: u32,   // segments = ceil(T / L)
  M: u32,   // memory rows
  BH: u32,
  scale: f32,
  _pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(8) var<storage, read_write> wsctr: array<u32>;
