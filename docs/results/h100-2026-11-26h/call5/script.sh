#!/usr/bin/env bash
# session 9, call 5: validation at 216b680: la bench fwd (all dtypes) and fwdbwd 1M, drift, la tests on the H100
source .carry/device-init.sh
export NO_COLOR=1 LAB_GIT_COMMIT=$(cat .handoff/commit)
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,uuid --format=csv,noheader > $R/gpu.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,pstate,power.draw,temperature.gpu,utilization.gpu,clocks_throttle_reasons.active --format=csv -lms 200 > $R/clocks.csv 2>&1 &
SMI=$!
timeout 130 deno task bench --backend webgpu --variant la --impl chunk --T 16K,64K,256K,1M --dtype bf16,f32,f16 --mode fwd --cell-timeout 60 --time-cap 8 --no-report --out $R/bench-la > $R/bench-la.log 2>&1
grep "^\[" $R/bench-la.log
timeout 90 deno task bench --backend webgpu --variant la --impl chunk --T 1M --dtype bf16,f32 --mode fwdbwd --cell-timeout 60 --time-cap 8 --no-report --out $R/bench-la-bwd > $R/bench-la-bwd.log 2>&1
grep "^\[" $R/bench-la-bwd.log
kill $SMI
timeout 120 deno task drift --backend webgpu --variant la --T 16K,64K,256K,1M --out $R/drift > $R/drift.log 2>&1; echo "drift rc=$?"; tail -12 $R/drift.log
( time LAB_GPU_TESTS=1 timeout 240 deno test -A tests/webgpu/la_out_test.ts tests/webgpu/la_test.ts tests/webgpu/fwd_seg_test.ts tests/webgpu/chunk_bwd_test.ts ) > $R/test-la.log 2>&1; echo "test rc=$?"
grep -E "passed|failed" $R/test-la.log | tail -2; grep -E "FAILED|rel err|differs" $R/test-la.log | head
cd $OUT && tar -czf r.tgz r && rm -rf r
