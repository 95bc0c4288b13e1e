#!/usr/bin/env bash
# session 8, call 7: la.out 9 with the D role on A invocations in phase 2 (12 warps, la.df), and 10 (= 9 with wsc prefetched as raw words)
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
P="deno run -A kernels/webgpu/prof.ts --variant la --dtype bf16"
{
$P --grid '{"la.out":[9,10],"la.zp":[1]}' 1048576
$P --grid '{"la.out":[9,10],"la.zp":[1],"la.df":[1]}' 1048576
$P --grid '{"la.out":[10],"la.zp":[1],"la.df":[1],"la.fch":[1],"la.rev":[1]}' 1048576
$P --grid '{"la.out":[10],"la.zp":[1],"la.df":[1],"la.probe":[15]}' 1048576
$P --grid '{"la.out":[8],"la.zp":[1]}' 1048576
$P --dtype f32,f16 --grid '{"la.out":[8],"la.zp":[1]}' 1048576
$P --dtype f32,f16 --grid '{"la.out":[10],"la.zp":[1],"la.df":[1]}' 1048576
$P --grid '{"la.out":[9,10],"la.zp":[1],"la.df":[1]}' 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
