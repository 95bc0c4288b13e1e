#!/usr/bin/env bash
# session 8, call 5: timing probes of la.out 9; the workgroup-memory size at which two workgroups stop fitting an SM
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
P="deno run -A kernels/webgpu/prof.ts --variant la --dtype bf16"
{
$P --grid '{"la.out":[9],"la.zp":[1]}' 1048576
$P --grid '{"la.out":[9],"la.zp":[1],"la.probe":[1,2,4,7,8,15]}' 1048576
$P --grid '{"la.cps":[64],"la.out_g":[128],"la.spad":[64,72,80,84,88,92,96]}' 131072
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
