#!/usr/bin/env bash
# session 9, call 2: la.state_rb 2/4 × la.tt, la.scan_q and la.cps at 64K/256K/1M
source .carry/device-init.sh
export NO_COLOR=1 LAB_GIT_COMMIT=$(cat .handoff/commit)
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,uuid --format=csv,noheader > $R/gpu.txt
P="deno run -A kernels/webgpu/prof.ts --variant la"
{
$P --dtype bf16 --grid '{"la.state_rb":[1,2,4],"la.tt":[8,16],"la.scan_q":[8]}' 1048576
$P --dtype bf16 --grid '{"la.state_rb":[2],"la.scan_q":[8],"la.cps":[32,64]}' 1048576
$P --dtype bf16 --grid '{"la.state_rb":[2],"la.scan_q":[4,8,16],"la.cps":[16,32]}' 262144
$P --dtype bf16 --grid '{"la.state_rb":[2],"la.scan_q":[4,8,16],"la.cps":[4,8]}' 65536
$P --dtype bf16 --grid '{"la.state_rb":[2],"la.scan_q":[4,8,16],"la.cps":[1,2]}' 16384
$P --dtype f16,f32 --grid '{"la.state_rb":[2,4],"la.scan_q":[8]}' 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
