#!/usr/bin/env bash
# session 8, call 9: mask4 skipping full blocks (la.mf), state tiles of 32 with the 4-way z sum, cps 64, fch/rev
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
P="deno run -A kernels/webgpu/prof.ts --variant la --dtype bf16"
B='"la.out":[9],"la.zp":[1]'
{
$P --grid "{$B}" 1048576
$P --grid "{$B,\"la.mf\":[1]}" 1048576
$P --grid "{$B,\"la.tt\":[32]}" 1048576
$P --grid "{$B,\"la.fch\":[1]}" 1048576
$P --grid "{$B,\"la.fch\":[1],\"la.rev\":[1]}" 1048576
$P --grid "{$B,\"la.mf\":[1],\"la.fch\":[1],\"la.rev\":[1],\"la.cps\":[16,32,64]}" 1048576
$P --grid "{$B,\"la.mf\":[1],\"la.fch\":[1],\"la.rev\":[1],\"la.tt\":[32],\"la.cps\":[64]}" 1048576
$P --grid "{$B}" 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
