#!/usr/bin/env bash
# session 9, call 1: the scan in parts (la.scan_q), 8×4 state owners (la.state_rb), la.tt, la.cps at 1M bf16
source .carry/device-init.sh
export NO_COLOR=1 LAB_GIT_COMMIT=$(cat .handoff/commit)
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,uuid --format=csv,noheader > $R/gpu.txt
P="deno run -A kernels/webgpu/prof.ts --variant la"
{
$P --dtype bf16 --grid '{"la.scan_q":[1,4,8],"la.state_rb":[1,2]}' 1048576
$P --dtype bf16 --grid '{"la.scan_q":[1,4]}' 65536 262144
$P --dtype bf16 --grid '{"la.tt":[8,16],"la.cps":[32,64],"la.state_rb":[1,2],"la.scan_q":[4]}' 1048576
$P --dtype f32,f16 --grid '{"la.scan_q":[1,4],"la.state_rb":[1,2]}' 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
