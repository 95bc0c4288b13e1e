// Advances the segment counter between two segment dispatches.
@compute @workgroup_size(1)
fn main() {
  wsctr[0] += 1u;
}
