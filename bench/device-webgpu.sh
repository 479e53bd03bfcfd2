#!/usr/bin/env bash
# The WebGPU benchmark on a borrowed GPU machine (the `device` tool): that machine is bare (no
# Node, no npm registry, maybe no Vulkan loader) and takes at most 64 MiB of carried files, so
#   bench/device-webgpu.sh prepare   (here) packs into .device/: this Node binary (xz), the built
#                                    dist/, the runtime packages the bench loads (webgpu's Linux x64
#                                    Dawn binary only, @huggingface/jinja) and Debian's Vulkan loader;
#   bench/device-webgpu.sh run [ARGS] (there, the one prepared command) unpacks them and runs
#                                    `bench webgpu ARGS` (default: every model, 64 steps, 3 reps),
#                                    the results table on stdout and JSON lines in $OUT.
# Device call: run(command="bash bench/device-webgpu.sh run", carry=[".device"], timeout_s=600).
set -euo pipefail
cd "$(dirname "$0")/.."
pack=.device

case "${1:-}" in
  prepare)
    grep -qx "/$pack/" .git/info/exclude 2>/dev/null || echo "/$pack/" >> .git/info/exclude
    rm -rf "$pack" && mkdir -p "$pack/node_modules/@huggingface" "$pack/debs" /tmp/minke-apt/partial
    xz -T0 -6 -c "$(command -v node)" > "$pack/node.xz"
    tar -C . -cJf "$pack/dist.tar.xz" dist/src dist/bench dist/test/models/synth.js dist/test/kernels/util.js dist/test/support
    cp -r node_modules/@huggingface/jinja "$pack/node_modules/@huggingface/"
    mkdir -p "$pack/node_modules/webgpu/dist"
    cp node_modules/webgpu/{package.json,index.js} "$pack/node_modules/webgpu/"
    tar -C node_modules/webgpu/dist -cJf "$pack/node_modules/webgpu/dist/linux-x64.tar.xz" linux-x64
    opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/minke-apt)
    apt-get "${opts[@]}" update -qq
    (cd "$pack/debs" && apt-get "${opts[@]}" download libvulkan1 >/dev/null)
    du -sh "$pack"
    ;;
  run)
    shift
    for f in "$pack"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
    xz -dc "$pack/node.xz" > /tmp/node && chmod +x /tmp/node
    tar -xJf "$pack/dist.tar.xz"
    tar -C "$pack/node_modules/webgpu/dist" -xJf "$pack/node_modules/webgpu/dist/linux-x64.tar.xz"
    rm -rf node_modules && cp -r "$pack/node_modules" node_modules
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
    out=${OUT:-/tmp}
    mkdir -p "$out"
    MINKE_BENCH_CACHE=/tmp/minke-bench /tmp/node dist/bench/main.js webgpu --json "$out/webgpu.jsonl" "$@" 2>&1 | tee "$out/webgpu.log"
    ;;
  *)
    echo "usage: bench/device-webgpu.sh prepare | run [bench webgpu options]" >&2
    exit 2
    ;;
esac
