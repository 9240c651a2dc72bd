#!/usr/bin/env bash
# Stop 35, call C: CoreLab's single-core form on core 2 beside MKL's one-thread grouped products on the same core
# (mkl_grouped.py 256 1 16 512 1), alternating, six rounds: does MKL's one-core rate move with ours?
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
{ for r in 1 2 3 4 5 6; do
  taskset -c 2 timeout 120 dotnet $D/corelab/MoeSharp.Benchmarks.dll "r$r-c2" 1
  MKL_NUM_THREADS=1 OMP_NUM_THREADS=1 taskset -c 2 timeout 120 python3 $D/cpu/mkl_grouped.py 256 1 16 512 1 2>&1 | tail -3
done; } 2>&1 | tee $OUT/mkl-core.txt
date -u
