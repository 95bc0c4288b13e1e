#!/usr/bin/env bash
# session 8, call 2: what limits the out pass to one workgroup an SM (workgroup memory or registers)
source .carry/device-init.sh
export NO_COLOR=1
R=$OUT/r; mkdir -p $R
deno eval 'const a = await navigator.gpu.requestAdapter(); const l = {}; for (const k in a.limits) l[k] = a.limits[k]; console.log(JSON.stringify(l))' > $R/limits.json 2>&1
P="deno run -A kernels/webgpu/prof.ts --variant la --dtype bf16"
{
$P --grid '{"la.cps":[64],"la.out_g":[128],"la.spad":[8,16,24,32,40]}' 65536 131072 262144
$P --grid '{"la.cps":[64],"la.out_g":[128],"la.probe":[32,64,96]}' 65536 131072 262144
$P --grid '{"la.cps":[64],"la.cs_len":[16],"la.out_g":[256]}' 65536 131072 262144
$P --grid '{"la.cs_len":[16]}' 1048576
$P --grid '{"la.zw":[1]}' 1048576
$P --grid '{"la.zw":[1],"la.tt":[32]}' 1048576
$P --grid '{"la.probe":[96]}' 1048576
$P 1048576
} 2>&1 | grep -v XDG | tee $R/prof.txt
cd $OUT && tar -czf r.tgz r && rm -rf r
