#!/usr/bin/env bash
# Stop 31, call A: which state the cores are in (CoreLab ceiling and MKL's), then compare.py's GEMM tables at 16 threads
# (three alternating rounds beside MKL) on 29d80bf.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u; lscpu | grep -i -E "model name|thread|core|socket|mhz" 
( OMP_NUM_THREADS=16 MKL_NUM_THREADS=16 taskset -c 0-15 python3 $D/lab/mkl_ceiling.py 16
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0-15 python3 $D/lab/mkl_ceiling.py 16 --one-per-thread
  LAB_ROUNDS=4 DOTNET_ROOT=$rt timeout 150 taskset -c 0-15 $rt/dotnet $D/lab/ceiling/MoeSharp.Benchmarks.dll x 16 ceiling ) 2>&1 | tee $OUT/a-ceiling.txt
date -u
timeout 400 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/a.jsonl --log $OUT/a-log.txt > $OUT/a.md 2>&1
echo "compare rc $?"
grep -E '^\|' $OUT/a.md | grep -v -- '---' | cut -c1-220
grep -E "^### GEMM" $OUT/a.md | cut -c1-400
date -u
