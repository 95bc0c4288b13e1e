#!/usr/bin/env bash
# session 9, call 6: the la fwdbwd f32 1M cell that call 5 cut off
source .carry/device-init.sh
export NO_COLOR=1 LAB_GIT_COMMIT=$(cat .handoff/commit)
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,uuid --format=csv,noheader > $R/gpu.txt
timeout 150 deno task bench --backend webgpu --variant la --impl chunk --T 1M --dtype f32 --mode fwdbwd --cell-timeout 120 --time-cap 8 --no-report --out $R/bench-la-bwd > $R/bench-la-bwd.log 2>&1
grep "^\[" $R/bench-la-bwd.log
cd $OUT && tar -czf r.tgz r && rm -rf r
