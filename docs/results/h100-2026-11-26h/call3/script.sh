#!/usr/bin/env bash
# session 9, call 3: new defaults (state_rb 2, scan_q 8, cps target 1024) against HEAD; la.state_zc 1/2
source .carry/device-init.sh
export NO_COLOR=1 LAB_GIT_COMMIT=$(cat .handoff/commit)
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,uuid --format=csv,noheader > $R/gpu.txt
P="deno run -A kernels/webgpu/prof.ts --variant la"
ln -s ../../node_modules .handoff/base/node_modules
{
echo "== HEAD"
(cd .handoff/base && $P --dtype bf16,f16,f32 16384 65536 262144 1048576)
echo "== work tree"
$P --dtype bf16 --grid '{"la.state_zc":[1,2]}' 16384 65536 262144 1048576
$P --dtype f16,f32 --grid '{"la.state_zc":[1,2]}' 1048576
$P --dtype f16,f32 16384 65536 262144
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
