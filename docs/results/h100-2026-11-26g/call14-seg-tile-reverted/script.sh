#!/usr/bin/env bash
# session 8, call 14: seg_tile.wgsl (seg_out5, chunk_out8/9 share their tile code): la tests and prof against HEAD (ab10cc6) on the same host
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,uuid --format=csv,noheader > $R/gpu.txt
ln -s ../../node_modules .handoff/base/node_modules
P="deno run -A kernels/webgpu/prof.ts --variant la --dtype bf16"
{
echo "# HEAD ab10cc6"
(cd .handoff/base && $P 1048576 && $P --mode fwdbwd 262144)
echo "# seg_tile.wgsl"
$P 1048576 && $P --mode fwdbwd 262144
echo "# HEAD ab10cc6 again"
(cd .handoff/base && $P 1048576)
} 2>&1 | grep -v XDG | tee $R/prof.txt
( time LAB_GPU_TESTS=1 timeout 240 deno test -A tests/webgpu/la_out_test.ts tests/webgpu/la_test.ts ) > $R/test-la.log 2>&1; echo "test rc=$?"
grep -E "passed|failed" $R/test-la.log | tail -2; grep -E "FAILED|rel err|differs" $R/test-la.log | head
cd $OUT && tar -czf r.tgz r && rm -rf r
