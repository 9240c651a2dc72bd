#!/usr/bin/env bash
# The 16-core run of bench/cpu on the GPU machine's CPUs (no .NET there): run from the repository root with the
# packed CLI and these scripts in one folder D (D/run.sh from bench/gpu/pack-device.sh, D/cpu/*.py, D/reference/):
#   bash D/cpu/device-run.sh D      → $OUT/tables-cpu.md, $OUT/results-cpu.jsonl, $OUT/log-cpu.txt, $OUT/machine-cpu.txt
# 2-thread figures run under taskset on cores 0-1 (both peers), all-core figures on every core. Its PyTorch is the peer.
set -uo pipefail
source "$(dirname "$0")/device-common.sh"
D=${1:?usage: device-run.sh DEVICE_FOLDER}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
{
  echo "date: $(date -u)"; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|Flags)' | cut -c1-400
  python3 -c 'import torch; print("torch", torch.__version__); print(torch.__config__.show())'
  nproc; free -g
  # The clock and caches the peak and the blocking assume: cpu MHz is what the VM reports (nominal), not turbo.
  lscpu | grep -Ei '(mhz|cache|numa node)' | cut -c1-200
  grep -m1 'cpu MHz' /proc/cpuinfo
} > "$OUT/machine-cpu.txt" 2>&1
head -5 "$OUT/machine-cpu.txt"
unpacked_runtime "$D" > /dev/null
export PYTHONUNBUFFERED=1
lanes=$(fma_lanes)
echo "FMA lanes per unit for the peak: $lanes" | tee -a "$OUT/machine-cpu.txt"
timeout "${BUDGET_S:-280}" python3 "$D/cpu/compare.py" --moe "bash $D/run.sh" --python python3 --pin \
  --threads "2,$(nproc)" --fma-lanes "$lanes" --tokens "${TOKENS:-8192}" --dim "${DIM:-2048}" --repeats "${REPEATS:-5}" --timeout "${STEP_TIMEOUT:-90}" \
  --gemm-rounds "${GEMM_ROUNDS:-1}" --layer-rounds "${LAYER_ROUNDS:-1}" --jsonl "$OUT/results-cpu.jsonl" --log "$OUT/log-cpu.txt" ${SKIP:+--skip "$SKIP"} \
  | tee "$OUT/tables-cpu.md"
echo "compare.py rc=${PIPESTATUS[0]}"
# Where the layer step's time goes at every core (moe train --profile: kernel totals per step), both layer shapes;
# a few seconds each, bounded. → $OUT/profile-layer-*.txt
for shape in "2048 512" "8192 1024"; do
  set -- $shape
  MOESHARP_THREADS=$(nproc) timeout 60 bash "$D/run.sh" train --shared-hidden 0 --steps 4 --tokens "$1" --dim "$2" \
    --hidden "$2" --experts 16 --top-k 2 --profile > "$OUT/profile-layer-T$1-D$2-$(nproc)thr.txt" 2>&1
  tail -28 "$OUT/profile-layer-T$1-D$2-$(nproc)thr.txt"
done
