#!/usr/bin/env bash
# Stop 29, call F: 1024^3 A·Bᵀ at 16 threads under explicit blockings (CoreLab sweep: mc 48-192, nc 128-512, kc
# 256-512, the default call between them), MKL's torch.matmul beside it; two interleaved rounds.
# $D/mkl1024.py is bench/cpu/lab/mkl_1024.py.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u; grep -m1 "model name" /proc/cpuinfo; nproc
for r in 1 2; do
  OMP_NUM_THREADS=16 MKL_NUM_THREADS=16 taskset -c 0-15 python3 $D/mkl1024.py 16
  DOTNET_ROOT=$rt timeout 120 taskset -c 0-15 $rt/dotnet $D/lone/sweep/MoeSharp.Benchmarks.dll x 16 sweep
done 2>&1 | tee $OUT/f.txt
date -u
