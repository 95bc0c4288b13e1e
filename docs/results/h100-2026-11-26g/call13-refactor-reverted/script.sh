#!/usr/bin/env bash
# session 8, call 13: la.out 8/9 with their loops moved into chunk_out_common.wgsl (inter_term, intra_term, den_*, store_tile) against the inline 9 (temporary version 10); la tests
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,uuid --format=csv,noheader > $R/gpu.txt
P="deno run -A kernels/webgpu/prof.ts --variant la"
{
$P --dtype bf16,f16,f32 --grid '{"la.out":[10,9,8],"la.state":[4]}' 1048576
$P --dtype bf16 --grid '{"la.out":[9,10],"la.state":[4]}' 262144 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
( time LAB_GPU_TESTS=1 timeout 200 deno test -A tests/webgpu/la_out_test.ts tests/webgpu/la_test.ts ) > $R/test-la.log 2>&1; echo "test rc=$?"
grep -E "passed|failed" $R/test-la.log | tail -2; grep -E "FAILED|rel err|differs" $R/test-la.log | head
cd $OUT && tar -czf r.tgz r && rm -rf r
