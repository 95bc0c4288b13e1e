#!/usr/bin/env bash
# The nightly GPU pipeline, one function per workflow step: ci/nightly.sh STEP.
# Steps hand state to each other through files under $OUT/state, so each can run as its own
# workflow step and the ones that need no GPU can be tested with fake results
# (tests/reports/ci_test.ts). A failing GPU test, drift check or comparison does not stop the
# pipeline: the run is still published, and the final `verdict` step fails the job.
#
# Environment (paths may be relative to the current directory):
#   DENO   how to run Deno                      [npx --yes deno@2.9.6]
#   OUT    working folder for this night        [out/nightly]
#   PAGES  where the gh-pages worktree goes     [gh-pages]
#   REPO   the git repository owning gh-pages   [this repository]
#   PUSH   0 to commit gh-pages without pushing [1]
#   BENCH_GPUS  bench --gpus on a runner with several GPUs, e.g. all (docs/bench.md) [one GPU]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DENO=${DENO:-npx --yes deno@2.9.6}
OUT=$(realpath -m "${OUT:-out/nightly}")
PAGES=$(realpath -m "${PAGES:-gh-pages}")
REPO=$(realpath -m "${REPO:-$ROOT}")
PUSH=${PUSH:-1}
STATE="$OUT/state"
mkdir -p "$STATE"

# Deno tasks resolve against the repository's deno.json, whatever the caller's directory.
task() { (cd "$ROOT" && $DENO task "$@"); }
tool() { (cd "$ROOT" && $DENO run -A "$@"); }

# Runs a command, records its exit status as $STATE/NAME.rc, and never fails the step.
record() {
  local name=$1 rc=0
  shift
  "$@" || rc=$?
  echo "$rc" >"$STATE/$name.rc"
  echo "nightly: $name exited $rc"
}

run_dir() {
  [ -s "$STATE/run_dir" ] || { echo "nightly: no bench run recorded (did the bench step run?)" >&2; exit 1; }
  cat "$STATE/run_dir"
}

step_build() { task build; }

step_test_gpu() { record test-gpu task test:gpu; }

step_bench() {
  record bench task bench --profile nightly ${BENCH_GPUS:+--gpus "$BENCH_GPUS"} --out "$OUT/runs" |
    tee "$STATE/bench.log"
  # bench exits 1 when a cell is oom (expected for naive attention at long T); what matters
  # is that it wrote a run, which compare then judges against the last night.
  local results
  results=$(sed -n 's/^results: //p' "$STATE/bench.log" | tail -n 1)
  [ -n "$results" ] && [ -f "$results" ] ||
    { echo "nightly: bench wrote no results.json" >&2; exit 1; }
  dirname "$results" >"$STATE/run_dir"
  tool ci/publish.ts render "$(run_dir)"
}

step_drift() {
  record drift task drift --out "$OUT/drift"
  if [ -d "$OUT/drift" ]; then tool ci/publish.ts merge-drift "$(run_dir)" "$OUT/drift"; fi
}

step_pages() {
  git -C "$REPO" worktree remove --force "$PAGES" 2>/dev/null || rm -rf "$PAGES"
  git -C "$REPO" worktree prune
  # ls-remote exits 2 only when the branch is missing; a network failure must not look like that.
  local rc=0
  git -C "$REPO" ls-remote --exit-code --heads origin gh-pages >/dev/null || rc=$?
  if [ "$rc" = 0 ]; then
    git -C "$REPO" fetch --quiet --depth=1 origin gh-pages
    git -C "$REPO" worktree add --quiet --detach "$PAGES" FETCH_HEAD
  elif [ "$rc" != 2 ]; then
    echo "nightly: cannot reach origin (git ls-remote exited $rc)" >&2
    exit 1
  else
    echo "nightly: no gh-pages branch yet; starting one"
    git -C "$REPO" worktree add --quiet --detach "$PAGES"
    git -C "$PAGES" checkout --quiet --orphan "nightly-pages-$$"
    git -C "$PAGES" rm -rfq --ignore-unmatch .
  fi
}

step_baseline() {
  local run_id base
  run_id=$(basename "$(run_dir)")
  base=$(tool ci/publish.ts latest "$PAGES/history" --except "$run_id")
  if [ -n "$base" ]; then
    cp "$base" "$STATE/base.json"
    echo "nightly: baseline $base"
  else
    rm -f "$STATE/base.json"
    echo "nightly: no previous nightly in $PAGES/history"
  fi
}

step_compare() {
  local dir
  dir=$(run_dir)
  if [ ! -f "$STATE/base.json" ]; then
    echo "No previous nightly to compare with." | tee "$dir/compare.md"
    echo 0 >"$STATE/compare.rc"
    return
  fi
  record compare task compare "$STATE/base.json" "$dir/results.json" \
    --markdown "$dir/compare.md" | tee "$dir/compare.txt"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$dir/compare.md" >>"$GITHUB_STEP_SUMMARY"; fi
}

step_publish() {
  tool ci/publish.ts copy "$(run_dir)" "$PAGES/history"
  task dashboard --history "$PAGES/history" --out "$PAGES"
  touch "$PAGES/.nojekyll"
  git -C "$PAGES" add -A
  git -C "$PAGES" -c user.name="linattn-bench nightly" -c user.email="nightly@localhost" \
    commit --quiet -m "nightly $(basename "$(run_dir)")"
  if [ "$PUSH" != 0 ]; then git -C "$PAGES" push --quiet origin HEAD:refs/heads/gh-pages; fi
}

step_verdict() {
  local failed=() name rc
  for name in test-gpu drift compare; do
    [ -f "$STATE/$name.rc" ] || continue
    rc=$(cat "$STATE/$name.rc")
    [ "$rc" = 0 ] || failed+=("$name (exit $rc)")
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "nightly: failed: ${failed[*]}"
    exit 1
  fi
  echo "nightly: ok"
}

case "${1:-}" in
  build | test-gpu | bench | drift | pages | baseline | compare | publish | verdict)
    "step_${1//-/_}"
    ;;
  *)
    echo "usage: ci/nightly.sh build|test-gpu|bench|drift|pages|baseline|compare|publish|verdict" >&2
    exit 2
    ;;
esac
