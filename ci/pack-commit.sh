#!/usr/bin/env bash
# Packs one commit for an offline GPU machine, so what runs there is exactly that commit (not a
# working tree with uncommitted edits) and results name it:
#
#   ci/pack-commit.sh [COMMIT] [DIR]     (defaults: HEAD, .handoff)
#
# writes DIR/tree-<sha>.tar.xz (git archive), DIR/liblak-<sha>.so.xz (the CUDA library built
# here from that tree; skipped with PACK_NO_BUILD=1 or without nvcc) and DIR/run-<sha>.sh. On
# the GPU machine, from the copied repo root (with .carry, node_modules and DIR carried):
#
#   bash DIR/run-<sha>.sh ci/lease.sh full "$LAK_REPO/DIR/<run folder>"
#
# runs the command inside the unpacked tree with LAB_GIT_COMMIT, LAK_LIBRARY and LAK_REPO (the
# copied repo root, for carried paths) set, after sourcing .carry/device-init.sh when present.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
commit=${1:-HEAD}
dir=${2:-.handoff}
if ! sha=$(git rev-parse --verify --quiet "$commit^{commit}"); then
  echo "pack-commit: '$commit' is not a commit here" >&2
  exit 2
fi
short=${sha:0:7}
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$sha" | tar -x -C "$tmp"
git archive "$sha" | xz -T0 -c >"$dir/tree-$short.tar.xz"
lib=""
if [ "${PACK_NO_BUILD:-0}" != 1 ]; then
  (cd "$tmp" && "${DENO:-deno}" run -A kernels/cuda/build.ts --if-available) >&2
  if [ -f "$tmp/build/liblak.so" ]; then
    xz -T0 -c "$tmp/build/liblak.so" >"$dir/liblak-$short.so.xz"
    lib="liblak-$short.so.xz"
  fi
fi
cat >"$dir/run-$short.sh" <<EOF
#!/usr/bin/env bash
# Runs "\$@" inside commit $sha unpacked from tree-$short.tar.xz (ci/pack-commit.sh).
set -uo pipefail
here=\$(cd "\$(dirname "\$0")" && pwd)
export LAK_REPO=\$(pwd)
[ -f .carry/device-init.sh ] && source .carry/device-init.sh
tree=\${TMPDIR:-/tmp}/lak-$short
mkdir -p "\$tree" && tar -xJf "\$here/tree-$short.tar.xz" -C "\$tree"
for d in node_modules .ext .carry; do [ -e "\$LAK_REPO/\$d" ] && ln -sfn "\$LAK_REPO/\$d" "\$tree/\$d"; done
export LAB_GIT_COMMIT=$sha
if [ -n "$lib" ]; then
  xz -dc "\$here/$lib" >"\$tree/liblak.so" && export LAK_LIBRARY="\$tree/liblak.so"
fi
cd "\$tree" && "\$@"
EOF
chmod +x "$dir/run-$short.sh"
echo "packed $sha into $dir: tree-$short.tar.xz${lib:+, $lib}, run-$short.sh"
