#!/usr/bin/env bash
# Issue 12's layer-step figures in one short device call: from the repository root, with folder D laid out as
# device-run.sh expects (D/run.sh from bench/gpu/pack-device.sh, D/cpu/* from bench/cpu, D/reference/* from
# bench/reference):
#   bash D/cpu/device-run-layer.sh D
# runs device-run.sh with only the layer steps (T 2048, D 512 and T 8192, D 1024; E 16, K 2; beside PyTorch's MoE
# layer) at 2 threads (taskset on cores 0-1) and on every core, with its all-core profiles, then the same two profiles
# on 2 pinned cores → $OUT/profile-layer-T*-2thr.txt.
set -uo pipefail
D=${1:?usage: device-run-layer.sh DEVICE_FOLDER}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
SKIP=${SKIP:-gemm,dispatch,exchange,run} BUDGET_S=${BUDGET_S:-120} STEP_TIMEOUT=${STEP_TIMEOUT:-60} \
  bash "$D/cpu/device-run.sh" "$D"
for shape in "2048 512" "8192 1024"; do
  set -- $shape
  MOESHARP_THREADS=2 timeout 40 taskset -c 0,1 bash "$D/run.sh" train --shared-hidden 0 --steps 4 --tokens "$1" \
    --dim "$2" --hidden "$2" --experts 16 --top-k 2 --profile > "$OUT/profile-layer-T$1-D$2-2thr.txt" 2>&1
  tail -26 "$OUT/profile-layer-T$1-D$2-2thr.txt"
done
