#!/usr/bin/env bash
# Stop 29, call G: eight blockings of 1024^3 A·Bᵀ at 16 threads interleaved over 12 rounds (CoreLab sweep2), twice,
# MKL's torch.matmul (bench/cpu/lab/mkl_1024.py) before each.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
for r in 1 2; do
  OMP_NUM_THREADS=16 MKL_NUM_THREADS=16 taskset -c 0-15 python3 $D/mkl1024.py 16
  DOTNET_ROOT=$rt timeout 100 taskset -c 0-15 $rt/dotnet $D/lone/sweep/MoeSharp.Benchmarks.dll x 16 sweep2
done 2>&1 | tee $OUT/g.txt
date -u
