#!/usr/bin/env bash
# The host GEMM of several builds side by side on the GPU machine's CPUs (no .NET there), interleaved in rounds so that
# the machine's drift hits them alike: `moe bench-cpu --what gemm --json` (every product's rate and its share of the
# adjacent FMA peak) at 2 threads pinned to CORES and on every core, for
#   this        the packed build (D/app),
#   NAME        D/app with D/variants/NAME/MoeSharp.dll in place of its own (e.g. main's, to compare against).
# From the repository root, with D laid out by bench/gpu/pack-device.sh (D/run.sh, D/app) and these scripts in D/cpu/
# (the summary is bench/cpu/lab/ab_rows.py, taken from D/cpu/ when there):
#   bash D/cpu/device-ab-gemm.sh D   → $OUT/ab-gemm-2.md and ab-gemm-N.md (ab_rows.py's table: each row's GFLOP/s per
#                                       round and the median of its shares per build), $OUT/ab-gemm.jsonl (every record,
#                                       its build and round added)
# ROUNDS2 (default 3) and ROUNDS_ALL (default 3) set the rounds at 2 threads and on every core; CORES (default 2,3) the
# two cores (stops 36-39 pinned to 2-3); REPEATS (default 11) the timed calls per product.
set -uo pipefail
source "$(dirname "$0")/device-common.sh"
D=${1:?usage: device-ab-gemm.sh DEVICE_FOLDER}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
rt=$(unpacked_runtime "$D")
all=$(nproc)
lanes=$(fma_lanes)
ab_rows=$D/cpu/ab_rows.py
[[ -f $ab_rows ]] || ab_rows=bench/cpu/lab/ab_rows.py
names="this $(variant_names "$D")"
: > "$OUT/ab-gemm.jsonl"
threads="2 $all"
[[ $all == 2 ]] && threads=2 # on two cores "every core" is the pinned pass again
for n in $threads; do
  dir=/tmp/ab-gemm-$n
  rm -rf "$dir"
  mkdir -p "$dir"
  rounds=${ROUNDS_ALL:-3} pin=()
  [[ $n == 2 ]] && rounds=${ROUNDS2:-3} pin=(taskset -c "${CORES:-2,3}")
  for round in $(seq "$rounds"); do
    for v in $names; do
      app="$D/app"
      [[ $v != this ]] && app="/tmp/app-$v"
      DOTNET_ROOT=$rt timeout 300 "${pin[@]}" "$rt/dotnet" "$app/moe.dll" bench-cpu --what gemm --threads "$n" \
        --fma-lanes "$lanes" --repeats "${REPEATS:-11}" --json > "$dir/$v-r$round.jsonl" 2> "$dir/$v-r$round.err"
      echo "threads $n round $round $v: rc $?"
      grep '^{' "$dir/$v-r$round.jsonl" | sed "s/^{/{\"build\":\"$v\",\"round\":$round,/" >> "$OUT/ab-gemm.jsonl"
    done
  done
  python3 "$ab_rows" "$dir" | tee "$OUT/ab-gemm-$n.md"
done
