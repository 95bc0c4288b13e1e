#!/usr/bin/env bash
# session 8, call 8: la.out 9 touching sub-chunk g + 2's sectors (L2 prefetch by loads used a sub-chunk later)
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
P="deno run -A kernels/webgpu/prof.ts --variant la --dtype bf16"
{
$P --grid '{"la.out":[9],"la.zp":[1]}' 1048576
$P --grid '{"la.out":[9],"la.zp":[1],"la.tch":[1]}' 1048576
$P --grid '{"la.out":[9],"la.zp":[1],"la.tch":[1],"la.fch":[1],"la.rev":[1]}' 1048576
$P --grid '{"la.out":[9],"la.zp":[1],"la.tch":[1],"la.out_g":[32,64]}' 1048576
$P --grid '{"la.out":[9],"la.zp":[1],"la.tch":[1],"la.probe":[7]}' 1048576
$P --dtype f16,f32 --grid '{"la.out":[9],"la.zp":[1],"la.tch":[1]}' 1048576
$P --grid '{"la.out":[9],"la.zp":[1],"la.tch":[1]}' 65536 262144 1048576
$P --grid '{"la.out":[9],"la.zp":[1]}' 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
