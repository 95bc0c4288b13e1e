#!/usr/bin/env bash
# session 8, call 4: la.out 9 with group 1's rows reversed (phase 2 balanced over sub-partitions) and score dots as fma chains
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
P="deno run -A kernels/webgpu/prof.ts --variant la"
{
$P --dtype bf16 --grid '{"la.out":[9],"la.zp":[1]}' 1048576
$P --dtype bf16 --grid '{"la.out":[9],"la.zp":[1],"la.rev":[1]}' 1048576
$P --dtype bf16 --grid '{"la.out":[9],"la.zp":[1],"la.fch":[1]}' 1048576
$P --dtype bf16 --grid '{"la.out":[9],"la.zp":[1],"la.rev":[1],"la.fch":[1],"la.cps":[16,32,64]}' 1048576
$P --dtype bf16 --grid '{"la.out":[9],"la.zp":[1],"la.rev":[1],"la.fch":[1],"la.out_g":[8,32]}' 1048576
$P --dtype f32,f16 --grid '{"la.out":[8,9],"la.zp":[1],"la.rev":[1],"la.fch":[1]}' 1048576
$P --dtype bf16 --grid '{"la.out":[8,9],"la.zp":[1],"la.rev":[1],"la.fch":[1]}' 65536 262144 1048576
$P --dtype bf16 --grid '{"la.out":[9],"la.zp":[1]}' 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
