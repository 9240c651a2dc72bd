#!/usr/bin/env bash
# Stop 30, call E: the final build. CoreLab big on 512 x 1024 x 1024 and 1024^3 at 16 threads, main's behaviour (`main`)
# beside the build (`new`), alternating; then compare.py's GEMM tables (three alternating rounds beside MKL) and the
# T 2048 layer step at 2 threads on cores 2-3 and at 16 threads.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
lab() { local dir=$1; shift; env "$@" DOTNET_ROOT=$rt timeout 90 taskset -c 0-15 $rt/dotnet $D/lab/$dir/MoeSharp.Benchmarks.dll x 16 big; }
for r in 1 2 3; do
  LAB_M=512 LAB_N=1024 LAB_K=1024 lab big LAB_TAG=main
  LAB_M=512 LAB_N=1024 LAB_K=1024 lab bignew LAB_TAG=new
done 2>&1 | tee $OUT/e-lab.txt
LAB_ROUNDS=3 lab big LAB_TAG=main 2>&1 | tee -a $OUT/e-lab.txt
LAB_ROUNDS=3 lab bignew LAB_TAG=new 2>&1 | tee -a $OUT/e-lab.txt
date -u
timeout 420 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2,16 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 3 --skip dispatch,exchange,run,large-layer --jsonl $OUT/e.jsonl --log $OUT/e-log.txt > $OUT/e.md 2>&1
echo "compare rc $?"
grep -E '^\|' $OUT/e.md | grep -v -- '---' | cut -c1-220
date -u
