#!/usr/bin/env bash
# Builds MoeSharp.dll at COMMIT, with PATCH applied when given, into D/variants/NAME/ for bench/cpu/device-ab-gemm.sh
# (and device-ab-layer.sh), which times each such build beside the packed one on the GPU machine's CPUs. The build runs
# in a throwaway worktree at /tmp/variant-NAME, so the checkout is left as it is.
# Usage (from the repository root): bash bench/cpu/lab/build-variant.sh NAME COMMIT [PATCH] [D]   (D: .device)
set -euo pipefail
name=${1:?usage: build-variant.sh NAME COMMIT [PATCH] [D]}
commit=${2:?usage: build-variant.sh NAME COMMIT [PATCH] [D]}
patch=${3:-}
d=${4:-.device}
root=$(pwd)
tree=/tmp/variant-$name
git worktree remove --force "$tree" 2> /dev/null || rm -rf "$tree"
git worktree add --detach "$tree" "$commit" > /dev/null
[[ -z $patch ]] || git -C "$tree" apply "$root/$patch"
dotnet build "$tree/src/MoeSharp" -c Release -v quiet -nologo > "$tree.log" 2>&1 || { cat "$tree.log" >&2; exit 1; }
mkdir -p "$d/variants/$name"
cp "$tree/src/MoeSharp/bin/Release/net10.0/MoeSharp.dll" "$d/variants/$name/MoeSharp.dll"
git worktree remove --force "$tree"
echo "$d/variants/$name/MoeSharp.dll: $commit${patch:+ + $patch}"
