#!/usr/bin/env bash
# Before/after of a refactor in one device call: bench/gpu/arch-bench.sh alternately on an older build
# (DEVICE_DIR/app-before.tar.xz, the app folder of an earlier pack-device.sh) and on the packed build, twice each, so
# the two builds share the machine, its clocks and its noise. Then, on the packed build, moe verify-golden on the GPU
# and the GPU-only unit tests (DEVICE_DIR/gpu-tests.tar.xz when the folder was compressed to fit the transfer).
# Usage: bash bench/gpu/arch-ab.sh [DEVICE_DIR]
set -u
here=$(cd "$(dirname "$0")" && pwd)
dev=${1:-.device}
OUT=${OUT:-bench-out}; mkdir -p "$OUT"
# The older build gets a folder of its own whose run.sh runs its app on the runtime unpacked here first.
bash "$dev/run.sh" --version > /dev/null
rm -rf "$dev/before" && mkdir -p "$dev/before" && tar xJf "$dev/app-before.tar.xz" -C "$dev/before"
cp "$dev/run.sh" "$dev/before/run.sh"
for round in 1 2; do
  bash "$here/arch-bench.sh" "$dev/before" "before$round" | grep -v '^GPU\|^[0-9]*$'
  bash "$here/arch-bench.sh" "$dev" "after$round" | grep -v '^GPU\|^[0-9]*$'
done
if [ -f "$dev/gpu-tests.tar.xz" ]; then tar xJf "$dev/gpu-tests.tar.xz" -C "$dev"; fi
timeout 120 bash "$dev/run.sh" verify-golden --device cuda > "$OUT/golden-cuda.txt" 2>&1; echo "verify-golden --device cuda: exit $?"
tail -2 "$OUT/golden-cuda.txt"
timeout 150 bash "$dev/run-gpu-tests.sh" > "$OUT/gpu-tests.txt" 2>&1; echo "GPU-only unit tests: exit $?"
tail -3 "$OUT/gpu-tests.txt"
