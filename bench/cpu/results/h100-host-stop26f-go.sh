#!/usr/bin/env bash
# Stop 26, call F: how one 256 x 512 x 512 product scales with threads (back-to-back calls), MoeSharp and MKL.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
{ date -u; lscpu | grep -E 'Model|^CPU\(s\)'; } | tee $OUT/machine.txt
for r in 1 2; do
  DOTNET_ROOT=$rt timeout 100 $rt/dotnet $D/corelab/MoeSharp.Benchmarks.dll all $(nproc) lone
  OMP_NUM_THREADS=$(nproc) timeout 100 python3 $D/cpu/mkl_lone.py $(nproc)
done 2>&1 | tee $OUT/lone-scaling.txt
