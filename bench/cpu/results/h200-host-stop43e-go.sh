#!/usr/bin/env bash
# Stop 43, call E: `moe bench-cpu --what gemm` on the lone expert alone (LAB_SHAPES=1, the stop-42 lab app, GC arrays)
# beside AlignLab (64-byte-aligned native buffers; B aligned or 16 bytes past) at 2 threads on cores 2-3, alternating.
set -u
D=.device
rt=$(source $D/cpu/device-common.sh; unpacked_runtime $D)
{ date -u; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|L1d|L2|L3)'; } > $OUT/machine.txt
L=(env DOTNET_ROOT=$rt $rt/dotnet $D/lab43b/MoeSharp.Benchmarks.dll)
SECONDS=0
for rep in 1 2 3; do
  LAB_SHAPES=1 DOTNET_ROOT=$rt taskset -c 2,3 $rt/dotnet $D/app/moe.dll bench-cpu --what gemm --threads 2 --fma-lanes 16 \
    --repeats 11 --json 2>/dev/null | python3 $D/lab43b/rows.py | tee -a $OUT/e2.txt
  taskset -c 2,3 "${L[@]}" 2 ${R2:-300} 0:0,16:0,0:2 2>&1 | tee -a $OUT/e2.txt
  echo "at $SECONDS s"
done
