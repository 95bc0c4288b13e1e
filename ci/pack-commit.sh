#!/usr/bin/env bash
# Packs one commit for an offline GPU machine, so what runs there is exactly that commit (not a
# working tree with uncommitted edits) and results name it:
#
#   ci/pack-commit.sh [COMMIT] [DIR]     (defaults: HEAD, .handoff)
#
# writes DIR/tree-<sha>.tar.xz (git archive), DIR/liblak-<sha>.so.xz (the CUDA library built
# here from that tree; skipped with PACK_NO_BUILD=1 or without nvcc), DIR/vk-layer/ (Mesa's
# Vulkan device-select layer and the libraries it links, from this machine's
# mesa-vulkan-drivers, which bench --gpus needs to pin WebGPU per GPU) and DIR/run-<sha>.sh. On
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
layer=/usr/lib/x86_64-linux-gnu/libVkLayer_MESA_device_select.so
vk=""
if [ -f "$layer" ]; then
  vk=", vk-layer/"
  mkdir -p "$dir/vk-layer"
  cp -L "$layer" "$dir/vk-layer/"
  ldd "$layer" | awk '$3 ~ /^\// && $1 !~ /^(libc|libpthread|libm|libdl)\.so|^ld-linux/ {print $3}' |
    xargs -r -I{} cp -L {} "$dir/vk-layer/"
  # An explicit-layer manifest (the package's is implicit), enabled by VK_INSTANCE_LAYERS.
  cat >"$dir/vk-layer/device_select.json" <<'JSON'
{"file_format_version": "1.0.0", "layer": {"name": "VK_LAYER_MESA_device_select",
 "type": "GLOBAL", "library_path": "./libVkLayer_MESA_device_select.so",
 "api_version": "1.3.211", "implementation_version": "1",
 "description": "Linux device selection layer"}}
JSON
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
if [ -d "\$here/vk-layer" ]; then
  export VK_LAYER_PATH="\$here/vk-layer" VK_INSTANCE_LAYERS=VK_LAYER_MESA_device_select
  export LD_LIBRARY_PATH="\$here/vk-layer\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
fi
if [ -n "$lib" ]; then
  xz -dc "\$here/$lib" >"\$tree/liblak.so" && export LAK_LIBRARY="\$tree/liblak.so"
fi
cd "\$tree" && "\$@"
EOF
chmod +x "$dir/run-$short.sh"
echo "packed $sha into $dir: tree-$short.tar.xz${lib:+, $lib}$vk, run-$short.sh"
