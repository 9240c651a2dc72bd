#!/usr/bin/env bash
# Only the GEMM part of bench/cpu on the GPU machine's CPUs (no .NET there), for a short call: the measured FMA peak and
# the GEMM table beside torch.matmul (MKL) at 2 threads (pinned to cores 0-1) and at every core, then, when D/variants/
# holds other builds of MoeSharp.dll (D/variants/NAME/MoeSharp.dll), the same bench-cpu run of each build and of this
# one, interleaved in two rounds so that the machine's drift hits them alike. Run from the repository root with the
# packed CLI and these scripts in one folder D (D/run.sh from bench/gpu/pack-device.sh, D/cpu/*.py, D/reference/; the
# last is taken from the repository's bench/reference when missing: torch_peer.py imports its dispatcher, so without it
# the PyTorch column stays empty, as it did once):
#   bash D/cpu/device-run-gemm.sh D   → $OUT/tables-cpu.md, results-cpu.jsonl, log-cpu.txt, machine-cpu.txt, and with
#                                         variants device-ab-gemm.sh's ab-gemm.jsonl and tables
# THREADS (default "2,<every core>") the thread counts; CORES the cores of the fewest threads (compare.py's --cores;
# default 0-1) and of the variants' 2-thread rounds (default 0,1); GEMM_ROUNDS (default 1) compare.py's alternating
# rounds; BUDGET_S (default 90) its time limit.
# Stops 39 and 42 judged the GEMM target with five rounds on cores 2-3 at 2 threads and three on every core:
#   THREADS=2 CORES=2,3 GEMM_ROUNDS=5 BUDGET_S=330 OUT=$OUT/g2 bash D/cpu/device-run-gemm.sh D
#   THREADS=16 GEMM_ROUNDS=3 BUDGET_S=170 OUT=$OUT/g16 bash D/cpu/device-run-gemm.sh D
set -uo pipefail
source "$(dirname "$0")/device-common.sh"
D=${1:?usage: device-run-gemm.sh DEVICE_FOLDER}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
[[ -d "$D/reference" ]] || cp -r bench/reference "$D/reference"
{
  echo "date: $(date -u)"; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|Flags)' | cut -c1-400
  python3 -c 'import torch; print("torch", torch.__version__)'
  nproc; lscpu | grep -Ei '(mhz|cache|numa node)' | cut -c1-200; grep -m1 'cpu MHz' /proc/cpuinfo
} > "$OUT/machine-cpu.txt" 2>&1
unpacked_runtime "$D" > /dev/null
export PYTHONUNBUFFERED=1
lanes=$(fma_lanes)
all=$(nproc)
timeout "${BUDGET_S:-90}" python3 "$D/cpu/compare.py" --moe "bash $D/run.sh" --python python3 --pin \
  --threads "${THREADS:-2,$all}" ${CORES:+--cores "$CORES"} --gemm-rounds "${GEMM_ROUNDS:-1}" \
  --fma-lanes "$lanes" --repeats "${REPEATS:-5}" --timeout 60 --skip layer,dispatch,exchange,run \
  --jsonl "$OUT/results-cpu.jsonl" --log "$OUT/log-cpu.txt" | tee "$OUT/tables-cpu.md"
[[ -d "$D/variants" ]] || exit 0
# Each variant beside this build, two rounds, 2 threads on cores 0-1 and every core (device-ab-gemm.sh).
ROUNDS2=${ROUNDS2:-2} ROUNDS_ALL=${ROUNDS_ALL:-2} CORES=${CORES:-0,1} REPEATS=${REPEATS:-5} \
  bash "$(dirname "$0")/device-ab-gemm.sh" "$D"
