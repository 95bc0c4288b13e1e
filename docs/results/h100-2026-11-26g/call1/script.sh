#!/usr/bin/env bash
# session 8, call 1: where the la forward's out/state passes spend their time (timing probes), occupancy sweep
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,uuid --format=csv,noheader > $R/gpu.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,pstate,utilization.gpu,power.draw --format=csv -lms 200 > $R/clocks.csv 2>&1 &
SMI=$!
P="deno run -A kernels/webgpu/prof.ts --variant la --dtype bf16"
{
$P 1048576
$P --grid '{"la.probe":[1,2,4,7,8,15,32]}' 1048576
$P --grid '{"la.sprobe":[1,2,4,7]}' 1048576
$P --grid '{"la.cps":[64],"la.out_g":[128]}' 65536 131072 196608 262144 393216 1048576
$P --grid '{"la.cps":[64],"la.out_g":[16]}' 65536 131072 196608 262144 393216
$P --grid '{"la.out_g":[8,16,32]}' 1048576
$P 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
kill $SMI
cd $OUT && tar -czf r.tgz r && rm -rf r
