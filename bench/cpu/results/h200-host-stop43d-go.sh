#!/usr/bin/env bash
# Stop 43, call D: B's alignment and the private grid reading B in place or packing it (bench/cpu/lab/AlignLab.cs.txt
# on main with lab/stop43_variants.patch), alternating call by call, at 2 threads on cores 2-3 and at 16 threads; beside
# it, `moe bench-cpu --what gemm` on the lone expert alone (LAB_SHAPES=1, the stop-42 lab app) at 2 threads.
set -u
D=.device
rt=$(source $D/cpu/device-common.sh; unpacked_runtime $D)
{ date -u; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|L1d|L2|L3)'; } > $OUT/machine.txt
L=(env DOTNET_ROOT=$rt $rt/dotnet $D/lab43b/MoeSharp.Benchmarks.dll)
SECONDS=0
for rep in 1 2; do
  taskset -c 2,3 "${L[@]}" 2 ${R2:-800} 2>&1 | tee -a $OUT/align2.txt
  LAB_SHAPES=1 DOTNET_ROOT=$rt taskset -c 2,3 $rt/dotnet $D/app/moe.dll bench-cpu --what gemm --threads 2 --fma-lanes 16 \
    --repeats 11 --json 2>/dev/null | grep '^{' | python3 -c '
import sys, json
for l in sys.stdin:
    r = json.loads(l)
    if r.get("what") == "gemm" and "product" in r:
        print(f"bench-cpu {r[\"shape\"][:14]} {r[\"product\"][:5]} {r[\"gflops\"]:.1f} GF/s, {100*r[\"fractionOfAdjacentPeak\"]:.0f} % of adjacent peak {r[\"adjacentPeakGflops\"]:.0f}")' | tee -a $OUT/align2.txt
  echo "at $SECONDS s"
done
"${L[@]}" 16 ${R16:-1500} 2>&1 | tee $OUT/align16.txt
echo "at $SECONDS s"
