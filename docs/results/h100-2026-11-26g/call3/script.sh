#!/usr/bin/env bash
# session 8, call 3: la.out 9 (two O groups splitting the depth, 13 warps) against 8; state pass z in 4 partial sums; la tests on the H100
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
P="deno run -A kernels/webgpu/prof.ts --variant la"
{
$P --dtype bf16 --grid '{"la.out":[8,9]}' 65536 1048576
$P --dtype bf16 --grid '{"la.out":[9],"la.out_g":[8,32]}' 1048576
$P --dtype bf16 --grid '{"la.zp":[1]}' 1048576
$P --dtype f32,f16 --grid '{"la.out":[8,9]}' 1048576
$P --dtype bf16 --grid '{"la.out":[9,8]}' 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
( time LAB_GPU_TESTS=1 timeout 240 deno test -A tests/webgpu/la_out_test.ts tests/webgpu/la_test.ts ) > $R/test.log 2>&1; echo "test rc=$?"
grep -E "passed|failed" $R/test.log | tail -3; grep -E "FAILED|rel err|differs" $R/test.log | head
cd $OUT && tar -czf r.tgz r && rm -rf r
