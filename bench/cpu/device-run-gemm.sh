#!/usr/bin/env bash
# Only the GEMM part of bench/cpu on the GPU machine's CPUs (no .NET there), for a short call: the measured FMA peak and
# the GEMM table beside torch.matmul (MKL) at 2 threads (pinned to cores 0-1) and at every core, then, when D/variants/
# holds other builds of MoeSharp.dll (D/variants/NAME/MoeSharp.dll), the same bench-cpu run of each build and of this
# one, interleaved in two rounds so that the machine's drift hits them alike. Run from the repository root with the
# packed CLI and these scripts in one folder D (D/run.sh from bench/gpu/pack-device.sh, D/cpu/*.py, D/reference/; the
# last is taken from the repository's bench/reference when missing: torch_peer.py imports its dispatcher, so without it
# the PyTorch column stays empty, as it did once):
#   bash D/cpu/device-run-gemm.sh D   → $OUT/tables-cpu.md, results-cpu.jsonl, log-cpu.txt, machine-cpu.txt, ab-gemm.jsonl
set -uo pipefail
D=${1:?usage: device-run-gemm.sh DEVICE_FOLDER}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
[[ -d "$D/reference" ]] || cp -r bench/reference "$D/reference"
{
  echo "date: $(date -u)"; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|Flags)' | cut -c1-400
  python3 -c 'import torch; print("torch", torch.__version__)'
  nproc; lscpu | grep -Ei '(mhz|cache|numa node)' | cut -c1-200; grep -m1 'cpu MHz' /proc/cpuinfo
} > "$OUT/machine-cpu.txt" 2>&1
bash "$D/run.sh" --version > /dev/null 2>&1 || true   # unpacks the .NET runtime once, untimed
export PYTHONUNBUFFERED=1
lanes=8
if grep -q GenuineIntel /proc/cpuinfo && grep -qw avx512f /proc/cpuinfo; then lanes=16; fi
all=$(nproc)
timeout "${BUDGET_S:-90}" python3 "$D/cpu/compare.py" --moe "bash $D/run.sh" --python python3 --pin --threads "2,$all" \
  --fma-lanes "$lanes" --repeats "${REPEATS:-5}" --timeout 60 --skip layer,dispatch,exchange,run \
  --jsonl "$OUT/results-cpu.jsonl" --log "$OUT/log-cpu.txt" | tee "$OUT/tables-cpu.md"
[[ -d "$D/variants" ]] || exit 0
# Each variant: this build's app with its MoeSharp.dll in place of this one's.
names="this"
for v in "$D"/variants/*/; do
  v=$(basename "$v"); names="$names $v"
  rm -rf "/tmp/app-$v"; cp -r "$D/app" "/tmp/app-$v"; cp "$D/variants/$v/MoeSharp.dll" "/tmp/app-$v/MoeSharp.dll"
done
rt=/tmp/dotnet-runtime
for round in 1 2; do
  for n in 2 "$all"; do
    for v in $names; do
      app="$D/app"; [[ $v != this ]] && app="/tmp/app-$v"
      MOESHARP_THREADS=$n timeout 60 taskset -c "0-$((n - 1))" env DOTNET_ROOT=$rt "$rt/dotnet" "$app/moe.dll" bench-cpu \
        --what gemm --json --threads "$n" --repeats "${REPEATS:-5}" --fma-lanes "$lanes" 2>> "$OUT/log-cpu.txt" |
        python3 -c 'import json,sys
for l in sys.stdin:
    if l.startswith("{"): r = json.loads(l); r.update(build=sys.argv[1], round=int(sys.argv[2])); print(json.dumps(r))' \
        "$v" "$round" >> "$OUT/ab-gemm.jsonl"
      echo "round $round, $n threads, $v: rc ${PIPESTATUS[0]}"
    done
  done
done
