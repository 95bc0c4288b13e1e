#!/usr/bin/env bash
# session 9, call 7: after removing la.state_rb 4: la fwd 1M per pass, la tests on the H100
source .carry/device-init.sh
export NO_COLOR=1 LAB_GIT_COMMIT=$(cat .handoff/commit)
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,uuid --format=csv,noheader > $R/gpu.txt
deno run -A kernels/webgpu/prof.ts --variant la --dtype bf16,f32,f16 1048576 2>&1 | grep -v XDG | tee $R/prof.txt
( time LAB_GPU_TESTS=1 timeout 200 deno test -A tests/webgpu/la_out_test.ts tests/webgpu/la_test.ts ) > $R/test-la.log 2>&1; echo "test rc=$?"
grep -E "passed|failed" $R/test-la.log | tail -2; grep -E "FAILED|rel err|differs" $R/test-la.log | head
cd $OUT && tar -czf r.tgz r && rm -rf r
