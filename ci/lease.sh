#!/usr/bin/env bash
# One call on a lent, offline GPU machine (see README "Running on a GPU machine without
# network"): correctness first, then measurements, each step under its own time budget so a
# slow step cannot eat the lease. Compact logs and JSON land in $OUT for the caller to fetch.
#
#   ci/lease.sh check            every CUDA op (tests/gpu), the WebGPU tests, memcheck, racecheck
#   ci/lease.sh measure [T]      chunk ops fwd/fwdbwd bf16+f32 up to T (default 1M), baselines
#                                at 16K/64K, WebGPU forward, drift; results JSON in $OUT
#   ci/lease.sh all [T]          both
#   ci/lease.sh sweep [T]        WebGPU tile sweeps (LAB_WEBGPU_TUNE grids) at T (1M), per pass
#   ci/lease.sh ab [T]           WebGPU kernels behind version knobs (docs/webgpu.md), 2 against
#                                1, per pass, at T (1M) and a shorter length
#   ci/lease.sh full [RUN_DIR]   the full profile (--profile full) in the background, watched
#                                for BUDGET seconds (540); cells cut at CELL_TIMEOUT (270). A
#                                later call on the same machine only watches the same run, so no
#                                cell is cut at a call's end. With RUN_DIR (carried in from an
#                                earlier machine) it resumes that run (same commit). The run
#                                folder lands in $OUT each call; "full: running" or "full:
#                                stopped" ends the log. BENCH_WRAP runs the bench through a
#                                wrapper, e.g. a packed commit's .handoff/run-<sha>.sh.
#   GPUS=all ci/lease.sh full    the same over every GPU of the host (bench --gpus)
#   DRY_RUN=1 ci/lease.sh ...    print the steps instead of running them
#
# Environment: OUT (default out/lease), LAB_GIT_COMMIT (the commit, since .git does not
# travel), LAK_LIBRARY (default build/liblak.so), DENO (default deno).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/lease}
DENO=${DENO:-deno}
export NO_COLOR=1 LAB_GPU_TESTS=1
mkdir -p "$OUT"
log="$OUT/lease.log"

step() { # step NAME SECONDS CMD...: runs CMD under a budget, keeps its tail in the log
  local name=$1 budget=$2
  shift 2
  echo "== $name ($(date -u +%T), budget ${budget}s)" | tee -a "$log"
  if [ "${DRY_RUN:-0}" = 1 ]; then echo "$*" | tee -a "$log"; return 0; fi
  timeout "$budget" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc" | tee -a "$log"
  grep -E '^(FAIL|ERR)|passed|failed|SUMMARY|results:|drift:' "$OUT/$name.log" | tail -8 | tee -a "$log"
}

copy_results() { # copy_results NAME DIR: the run's results.json (or its jsonl if cut short)
  [ "${DRY_RUN:-0}" = 1 ] && return 0
  cp "$2"/*/results.json "$OUT/$1.json" 2>/dev/null || cp "$2"/*/results.jsonl "$OUT/$1.jsonl" 2>/dev/null
}

check() {
  step cuda-ops 150 $DENO test -A tests/gpu/cuda_ops_test.ts
  step webgpu 90 $DENO test -A tests/webgpu/
  step memcheck 90 compute-sanitizer --tool memcheck --error-exitcode 1 $DENO run -A tests/gpu/sanitize.ts
  step racecheck 120 compute-sanitizer --tool racecheck --error-exitcode 1 $DENO run -A tests/gpu/sanitize.ts
}

measure() {
  local T=${1:-1M} tmp
  tmp=$(mktemp -d)
  step bench-chunk 300 $DENO task bench --backend cuda --variant la,gla,deltanet,rmt --impl chunk \
    --T "16K,64K,256K,$T" --dtype bf16,f32 --mode fwd,fwdbwd --min-samples 5 --max-samples 12 \
    --time-cap 1 --warmup 2 --no-report --out "$tmp/chunk"
  copy_results bench-chunk "$tmp/chunk"
  step bench-baselines 120 $DENO task bench --backend cuda --variant softmax,la,gla,deltanet \
    --impl flash,quadratic,recurrent --T 16K,64K --dtype bf16 --mode fwd,fwdbwd --min-samples 3 \
    --max-samples 8 --time-cap 1 --warmup 1 --cell-timeout 30 --no-report --out "$tmp/base"
  copy_results bench-baselines "$tmp/base"
  step bench-webgpu 150 $DENO task bench --backend webgpu --variant la,gla,deltanet,rmt --impl chunk \
    --T "64K,$T" --dtype bf16,f32 --mode fwd --min-samples 3 --max-samples 6 --time-cap 1 \
    --warmup 1 --cell-timeout 40 --no-report --out "$tmp/webgpu"
  copy_results bench-webgpu "$tmp/webgpu"
  step webgpu-passes 60 $DENO run -A kernels/webgpu/prof.ts --variant la,gla,deltanet \
    --dtype bf16,f32 65536 "$(tokens "$T")"
  step drift 270 $DENO task drift --backend cuda --variant la,gla,deltanet,rmt \
    --T "4K,16K,64K,256K,$T" --fp64-max-T 4K --out "$OUT/drift"
}

tokens() { # 1M → 1048576, 256K → 262144 (prof.ts takes plain counts)
  case "$1" in
    *M) echo $((${1%M} * 1048576)) ;;
    *K) echo $((${1%K} * 1024)) ;;
    *) echo "$1" ;;
  esac
}

sweep() {
  local T
  T=$(tokens "${1:-1M}")
  step sweep-la 60 $DENO run -A kernels/webgpu/prof.ts --variant la --dtype bf16 \
    --grid '{"la.cps":[16,32,64,128],"la.sub":[16,32],"la.tt":[32,64]}' "$T"
  step sweep-gla 60 $DENO run -A kernels/webgpu/prof.ts --variant gla --dtype bf16 \
    --grid '{"gla.cps":[16,32,64,128],"gla.kt":[4,8,16]}' "$T"
  step sweep-deltanet 60 $DENO run -A kernels/webgpu/prof.ts --variant deltanet --dtype bf16 \
    --grid '{"deltanet.cps":[16,32,64],"deltanet.sum_cols":[32,64]}' "$T"
  step sweep-bwd 120 $DENO run -A kernels/webgpu/prof.ts --variant la,gla --dtype bf16 \
    --mode fwdbwd --grid '{"la.bwd_d":[8,16],"gla.bwd_d":[8,16]}' "$T"
}

ab() { # the kernels behind version knobs: each candidate against version 1, every knob set
  local T
  T=$(tokens "${1:-1M}")
  step ab-deltanet 150 $DENO run -A kernels/webgpu/prof.ts --variant deltanet --dtype bf16 \
    --mode fwdbwd --grid '{"deltanet.bwd_seg":[2,1]}' 262144 "$T"
  step ab-deltanet-grad 60 $DENO run -A kernels/webgpu/prof.ts --variant deltanet --dtype bf16 \
    --mode fwdbwd --grid '{"deltanet.grad":[2,1]}' 262144
  step ab-fwd-seg 60 $DENO run -A kernels/webgpu/prof.ts --variant la,gla --dtype bf16 \
    --mode fwdbwd --grid '{"la.fwd_seg":[2,1],"gla.fwd_seg":[2,1]}' 262144 "$T"
  step ab-la-out 50 $DENO run -A kernels/webgpu/prof.ts --variant la --dtype bf16 \
    --grid '{"la.out":[8,5]}' 65536 "$T"
  step ab-rmt 150 $DENO run -A kernels/webgpu/prof.ts --variant rmt --dtype bf16 \
    --grid '{"rmt.mem":[2,1],"rmt.tok":[2,1]}' 65536 "$T"
  step ab-softmax 100 $DENO run -A kernels/webgpu/prof.ts --variant softmax --dtype bf16 \
    --grid '{"softmax.tok":[2,1]}' 16384 65536
}

full() {
  local budget=${BUDGET:-540} run=${1:-} state=${FULL_STATE:-/tmp/lak-lease-full}
  local bench=(${BENCH_WRAP:-} "$DENO" task bench)
  mkdir -p "$state"
  if [ -n "$run" ]; then
    run=$(realpath -m "$run")
    if [ ! -f "$run/run.json" ]; then
      echo "ci/lease.sh full: $run is not a run folder (no run.json)" >&2
      exit 2
    fi
    # The device tool replaces carried paths on every call, while the bench keeps appending to
    # the file it opened (session 6 lost 38 results.jsonl lines that way): the run goes on in a
    # copy outside the carried tree, made by the first call on this machine.
    local copy
    copy="$state/resume/$(basename "$run")"
    [ -d "$copy" ] || { mkdir -p "$state/resume" && cp -r "$run" "$copy"; }
    run=$copy
  fi
  # The run a previous call on this machine started or resumed, unless a folder is named.
  if [ -z "$run" ] && [ -f "$state/run" ]; then run=$(cat "$state/run"); fi
  local pid
  pid=$(cat "$state/pid" 2>/dev/null || true)
  echo "== bench-full ($(date -u +%T), budget ${budget}s)" | tee -a "$log"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "full: watching the run started earlier (pid $pid)" | tee -a "$log"
  else
    local cmd
    if [ -n "$run" ] && [ -f "$run/run.json" ]; then
      cmd=("${bench[@]}" --resume "$run" --no-report)
    else
      # Cells end well inside a machine's hold (a cell cut when the machine goes back reruns on
      # the next resume); one predicted to need longer is skipped with the prediction.
      cmd=("${bench[@]}" --profile full --no-report ${GPUS:+--gpus "$GPUS"} \
        --cell-timeout "${CELL_TIMEOUT:-270}" --out "$state/runs")
    fi
    echo "${cmd[*]}" | tee -a "$log"
    [ "${DRY_RUN:-0}" = 1 ] && return 0
    setsid nohup "${cmd[@]}" >>"$state/bench.log" 2>&1 </dev/null &
    echo $! >"$state/pid"
    pid=$!
  fi
  local end=$((SECONDS + budget))
  while [ $SECONDS -lt $end ] && kill -0 "$pid" 2>/dev/null; do sleep 5; done
  if [ -z "$run" ] || [ ! -f "$run/run.json" ]; then
    run=$(ls -d "$state"/runs/*/ 2>/dev/null | head -1)
    run=${run%/}
  fi
  [ -n "$run" ] && echo "$run" >"$state/run"
  cp "$state/bench.log" "$OUT/bench-full.log"
  grep -E '^bench:|^\[' "$state/bench.log" | tail -n 6 | tee -a "$log"
  [ -n "$run" ] && cp -r "$run" "$OUT/"
  if kill -0 "$pid" 2>/dev/null; then echo "full: running" | tee -a "$log"; else echo "full: stopped" | tee -a "$log"; fi
}

case "${1:-}" in
  check) check ;;
  measure) measure "${2:-1M}" ;;
  all) check; measure "${2:-1M}" ;;
  sweep) sweep "${2:-1M}" ;;
  ab) ab "${2:-1M}" ;;
  full) full "${2:-}" ;;
  *) echo "usage: ci/lease.sh check|measure [T]|all [T]|sweep [T]|ab [T]|full [RUN_DIR]" >&2; exit 2 ;;
esac
echo "== done ($(date -u +%T))" | tee -a "$log"
