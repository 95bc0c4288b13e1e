// Storage dtype f16 (needs the shader-f16 feature); arithmetic stays in f32.
enable f16;
@group(0) @binding(1) var<storage, read> q: array<f16>;
@group(0) @binding(2) var<storage, read> k: array<f16>;
@group(0) @binding(3) var<storage, read> v: array<f16>;
@group(0) @binding(4) var<storage, read_write> o: array<f16>;

fn ld_q(i: u32) -> f32 { return f32(q[i]); }
fn ld_k(i: u32) -> f32 { return f32(k[i]); }
fn ld_v(i: u32) -> f32 { return f32(v[i]); }
fn st_o2(i: u32, a: f32, b: f32, both: bool) {
  o[i] = f16(a);
  if (both) { o[i + 1u] = f16(b); }
}
