#!/usr/bin/env bash
# session 8, call 6: la.out 9 with constant-trip loops (inter over KH, phase 2 over ⌈L4/2⌉) so they unroll
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
P="deno run -A kernels/webgpu/prof.ts --variant la --dtype bf16"
B='"la.out":[9],"la.zp":[1]'
{
$P --grid "{$B}" 1048576
$P --grid "{$B,\"la.kc\":[1]}" 1048576
$P --grid "{$B,\"la.p2c\":[1]}" 1048576
$P --grid "{$B,\"la.kc\":[1],\"la.p2c\":[1]}" 1048576
$P --grid "{$B,\"la.kc\":[1],\"la.p2c\":[1],\"la.fch\":[1]}" 1048576
$P --grid "{$B,\"la.kc\":[1],\"la.p2c\":[1],\"la.fch\":[1],\"la.rev\":[1]}" 1048576
$P --grid "{$B,\"la.kc\":[1],\"la.p2c\":[1],\"la.fch\":[1],\"la.cps\":[64]}" 1048576
$P --grid "{$B,\"la.kc\":[1],\"la.p2c\":[1],\"la.probe\":[7,15]}" 1048576
$P --dtype f32,f16 --grid "{$B,\"la.kc\":[1],\"la.p2c\":[1],\"la.fch\":[1]}" 1048576
$P --grid "{$B}" 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
