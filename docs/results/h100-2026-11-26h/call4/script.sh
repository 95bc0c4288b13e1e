#!/usr/bin/env bash
# session 9, call 4: la.state_zc 1/2 repeated (bf16, f16, f32 at 256K, 1M) with clocks; la tests on the H100
source .carry/device-init.sh
export NO_COLOR=1 LAB_GIT_COMMIT=$(cat .handoff/commit)
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,uuid --format=csv,noheader > $R/gpu.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,pstate,power.draw,temperature.gpu,utilization.gpu,clocks_throttle_reasons.active --format=csv -lms 200 > $R/clocks.csv 2>&1 &
SMI=$!
P="deno run -A kernels/webgpu/prof.ts --variant la"
{
for i in 1 2; do
date +%T
$P --dtype bf16,f32,f16 --grid '{"la.state_zc":[1,2]}' 262144 1048576
$P --dtype bf16 --grid '{"la.state_zc":[2,1]}' 1048576
done
} 2>&1 | grep -v XDG | tee $R/prof.txt
kill $SMI
( time LAB_GPU_TESTS=1 timeout 200 deno test -A tests/webgpu/la_out_test.ts tests/webgpu/la_test.ts ) > $R/test-la.log 2>&1; echo "test rc=$?"
grep -E "passed|failed" $R/test-la.log | tail -2; grep -E "FAILED|rel err|differs" $R/test-la.log | head
cd $OUT && tar -czf r.tgz r && rm -rf r
