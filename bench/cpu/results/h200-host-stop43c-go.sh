#!/usr/bin/env bash
# Stop 43, call C: the private grid's variants on the lone T 2048 expert, alternating call by call in one process
# (bench/cpu/lab/PairLab.cs.txt on main with lab/stop43_variants.patch), at 2 threads on cores 2-3 (twice, MKL beside)
# and at 16 threads.
set -u
D=.device
rt=$(source $D/cpu/device-common.sh; unpacked_runtime $D)
{ date -u; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|L1d|L2|L3)'; } > $OUT/machine.txt
L=(env DOTNET_ROOT=$rt $rt/dotnet $D/lab43/MoeSharp.Benchmarks.dll)
SECONDS=0
for rep in 1 2; do
  taskset -c 2,3 "${L[@]}" 2 ${R2:-1200} 2>&1 | tee -a $OUT/lab2.txt
  taskset -c 2,3 python3 $D/lab43/mkl_lone.py 2 2>&1 | tee -a $OUT/lab2.txt
  echo "at $SECONDS s"
done
"${L[@]}" 16 ${R16:-2500} 2>&1 | tee $OUT/lab16.txt
python3 $D/lab43/mkl_lone.py 16 2>&1 | head -1 | tee -a $OUT/lab16.txt
echo "at $SECONDS s"
