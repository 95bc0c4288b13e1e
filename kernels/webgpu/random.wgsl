// Device-side random inputs (bench/backends/backend.ts RandomSource). Element i of a logical
// tensor gets a value from a counter-based hash of (seed, i), so any slice of it (one head
// group's buffer, a prefix) is drawn alike wherever it is stored:
//   u1, u2 = two independent 24-bit uniforms of (seed, i); x = √(−2 ln u1) · cos(2π u2)
//   normal: x; gate: logsigmoid(x)/16; beta: sigmoid(x) (bench/inputs.ts distributionOf).
// The buffer holds heads [h_base, h_base + Hg) of a [OUTER, H, INNER] tensor as
// [OUTER, Hg, INNER]; one invocation writes a pair of adjacent elements (a whole bf16 word).
struct Fill {
  n: u32,       // elements in this buffer
  seed: u32,
  H: u32,       // heads of the logical tensor
  Hg: u32,      // heads in this buffer
  h_base: u32,
  inner: u32,   // elements per (outer, head)
  dist: u32,    // 0 normal, 1 gate, 2 beta
  nx: u32,      // workgroups along x (the grid is 2-D above 65535 workgroups)
}
@group(0) @binding(0) var<uniform> f: Fill;
override WG: u32 = 256;

fn mix32(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

fn draw(j: u32) -> f32 {
  let outer = j / (f.Hg * f.inner);
  let r = j % (f.Hg * f.inner);
  let i = (outer * f.H + f.h_base + r / f.inner) * f.inner + r % f.inner;
  let k1 = mix32(f.seed * 2u + 0x9e3779b9u);
  let k2 = mix32(f.seed * 2u + 1u + 0x9e3779b9u);
  let u1 = (f32(mix32(i ^ k1) >> 8u) + 1.0) / 16777216.0;
  let u2 = f32(mix32(mix32(i) ^ k2) >> 8u) / 16777216.0;
  let x = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
  if (f.dist == 1u) { return -log(1.0 + exp(-x)) / 16.0; }
  if (f.dist == 2u) { return 1.0 / (1.0 + exp(-x)); }
  return x;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let j = 2u * ((wid.y * f.nx + wid.x) * WG + lid);
  if (j >= f.n) { return; }
  st2_dst(j, draw(j), draw(min(j + 1u, f.n - 1u)), j + 1u < f.n);
}
