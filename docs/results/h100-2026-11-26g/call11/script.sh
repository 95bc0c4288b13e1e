#!/usr/bin/env bash
# session 8, call 11: la.out 9 with the D role's sums as vector accumulations (la.dt: phase 1 φ(q)·z, phase 2 row sums over a constant trip), cps 64, f32 8 vs 9
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
P="deno run -A kernels/webgpu/prof.ts --variant la"
{
$P --dtype bf16 1048576
$P --dtype bf16 --grid '{"la.out":[10]}' 1048576
$P --dtype bf16 --grid '{"la.out":[10],"la.cps":[32,64]}' 1048576
$P --dtype bf16 1048576
$P --dtype bf16 --grid '{"la.out":[10]}' 65536 262144 1048576
$P --dtype f16 --grid '{"la.out":[10]}' 1048576
$P --dtype f16 1048576
$P --dtype f32 --grid '{"la.out":[8,9],"la.state":[4]}' 1048576
$P --dtype f32 --grid '{"la.out":[10]}' 1048576
$P --dtype f32 --grid '{"la.out":[8,9],"la.state":[4]}' 262144
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
