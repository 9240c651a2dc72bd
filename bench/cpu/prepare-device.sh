#!/usr/bin/env bash
# Lays out .device/ for the CPU scripts on the GPU machine (which has no .NET): the packed CLI and runtime
# (bench/gpu/pack-device.sh) without the GPU-only test runner, which the CPU scripts do not use and which would take
# part of the 64 MB that may travel; bench/cpu's scripts and lab/ab_rows.py in .device/cpu/, bench/reference's in
# .device/reference/; and, for each NAME=COMMIT[:PATCH] given, that build's MoeSharp.dll in .device/variants/NAME/
# (lab/build-variant.sh), which device-ab-gemm.sh and device-ab-layer.sh time beside the packed build. It also drops the
# plotting libraries' native code and the XML docs (12 MB), which no CPU script uses: with the repository's own files
# the whole call must stay under 64 MiB.
# Usage (from the repository root): bash bench/cpu/prepare-device.sh [NAME=COMMIT[:PATCH] ...]
# then `run` with carry [".device"], e.g. `ROUNDS2=3 ROUNDS_ALL=3 bash .device/cpu/device-ab-gemm.sh .device`.
set -euo pipefail
cd "$(dirname "$0")/../.."
for spec in "$@"; do
  [[ $spec == *=* ]] || { echo "prepare-device.sh: '$spec' is not NAME=COMMIT[:PATCH]" >&2; exit 2; }
done
grep -qx '/.device/' .git/info/exclude 2> /dev/null || echo /.device/ >> .git/info/exclude
bash bench/gpu/pack-device.sh > /dev/null
rm -rf .device/gpu-tests .device/run-gpu-tests.sh .device/variants
rm -f .device/app/libSkiaSharp.so .device/app/libHarfBuzzSharp.so .device/app/*.xml
mkdir -p .device/cpu .device/reference
cp bench/cpu/*.py bench/cpu/*.sh bench/cpu/lab/ab_rows.py .device/cpu/
cp bench/reference/*.py .device/reference/
for spec in "$@"; do
  name=${spec%%=*} rest=${spec#*=}
  commit=${rest%%:*} patch=
  [[ $rest == *:* ]] && patch=${rest#*:}
  bash bench/cpu/lab/build-variant.sh "$name" "$commit" $patch
done
du -sh .device
