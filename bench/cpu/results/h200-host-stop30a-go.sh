#!/usr/bin/env bash
# Stop 30, call A: the cores' ceiling under all-core load beside the shared pass (CoreLab ceiling, LAB_WANTED=1 build),
# and MKL's matching forms (mkl_ceiling.py), alternating three times at 16 threads on cores 0-15.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u; nproc; lscpu | grep -i -E "model name|thread|core|socket|mhz|L1d|L2|L3" 
for r in 1 2 3; do
  echo "== round $r"
  OMP_NUM_THREADS=16 MKL_NUM_THREADS=16 taskset -c 0-15 python3 $D/lab/mkl_ceiling.py 16
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0-15 python3 $D/lab/mkl_ceiling.py 16 --one-per-thread
  LAB_WANTED=1 LAB_ROUNDS=8 DOTNET_ROOT=$rt timeout 150 taskset -c 0-15 $rt/dotnet $D/lab/ceiling/MoeSharp.Benchmarks.dll x 16 ceiling
done 2>&1 | tee $OUT/a.txt
date -u
