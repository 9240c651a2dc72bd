#!/usr/bin/env bash
# Issue 12's exchange/dispatch figures in one short device call: from the repository root, with folder D laid out as
# device-run.sh expects (D/run.sh from bench/gpu/pack-device.sh, D/cpu/* from bench/cpu, D/reference/* from
# bench/reference):
#   bash D/cpu/device-run-exchange.sh D
# runs device-run.sh with only the dispatch + combine (world 1 and world 4, beside torchtitan's dispatcher in PyTorch)
# and default `moe run` steps, at 2 threads (taskset on cores 0-1) and on every core, then the default `moe run` three
# more times on 2 pinned cores (its rank work is one cold run, so one figure is noisy) → $OUT/run-2cores.txt.
set -uo pipefail
D=${1:?usage: device-run-exchange.sh DEVICE_FOLDER}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
SKIP=${SKIP:-gemm,layer,large-layer,exchange} BUDGET_S=${BUDGET_S:-110} REPEATS=${REPEATS:-3} \
  STEP_TIMEOUT=${STEP_TIMEOUT:-60} bash "$D/cpu/device-run.sh" "$D"
grep -m1 . /sys/kernel/mm/transparent_hugepage/enabled >> "$OUT/machine-cpu.txt" 2>&1 || true
for i in 1 2 3; do
  MOESHARP_THREADS=2 timeout 30 taskset -c 0,1 bash "$D/run.sh" run 2>&1 | grep -E 'ms for|NOT verified' || echo "run $i failed"
done | tee "$OUT/run-2cores.txt"
