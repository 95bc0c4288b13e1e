// Shared by the chunked forward passes of la, gla and deltanet. Layouts (row-major):
//   q, k, g [B,T,H,K]; v, o [B,T,H,V]; beta [B,T,H]; h0, final_state [B,H,K,V];
//   z0, final_z [B,H,K] (f32). Workspaces are described by each variant's passes.
// B and H are those of one head group (the backend splits heads so every buffer fits a
// binding); storage bindings are declared by the host (kernel.ts ioSource/f32Source).
struct Params {
  T: u32,        // tokens per sequence
  H: u32,        // heads
  NC: u32,       // chunks per sequence = ceil(T / C)
  BH: u32,       // B * H
  scale: f32,    // output scale (la: only when not normalizing)
  has_h0: u32,
  has_z0: u32,
  flags: u32,    // deltanet: bit 0 = l2-normalize q and k; la: bit 1 = normalize
}

@group(0) @binding(0) var<uniform> p: Params;

override C: u32 = 64;   // chunk size (tokens)
override K: u32 = 64;   // key dim
override V: u32 = 64;   // value dim
const MT: u32 = 4u;     // per-invocation register tile (rows and columns)

fn phi(x: f32) -> f32 {
  return select(exp(x), x + 1.0, x > 0.0);
}

// Element offset of (b, t, h, 0) in a [B,T,H,D] tensor; bh = b·H + h.
fn row_base(bh: u32, t: u32, D: u32) -> u32 {
  let b = bh / p.H;
  let h = bh % p.H;
  return ((b * p.T + t) * p.H + h) * D;
}

// Element offset of (b, t, h) in a [B,T,H] tensor (beta).
fn beta_at(bh: u32, t: u32) -> u32 {
  return (bh / p.H * p.T + t) * p.H + bh % p.H;
}
