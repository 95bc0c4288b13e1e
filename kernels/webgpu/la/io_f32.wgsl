// Storage dtype f32: q, k, v and o are plain f32 arrays.
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

fn ld_q(i: u32) -> f32 { return q[i]; }
fn ld_k(i: u32) -> f32 { return k[i]; }
fn ld_v(i: u32) -> f32 { return v[i]; }
// Stores o[i] = a and, when `both`, o[i + 1] = b (i is even).
fn st_o2(i: u32, a: f32, b: f32, both: bool) {
  o[i] = a;
  if (both) { o[i + 1u] = b; }
}
