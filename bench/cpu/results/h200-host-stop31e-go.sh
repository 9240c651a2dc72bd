#!/usr/bin/env bash
# Stop 31, call E: grouped calls of 2 and 3 experts of 1024^3 past one wave at 2 threads (cores 2-3) and 4 (cores
# 0-3): 29d80bf (main: the private grid for every grouped call past one wave) against the build whose grouped private
# grid also needs at most 8 default blocks per thread a wave (new), two alternations; then compare.py's GEMM tables at
# 16 threads on the new library's build (the fast-state check).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
lab() { b=$1; cores=$2; thr=$3; shift 3; env "$@" LAB_TAG=$b DOTNET_ROOT=$rt timeout 90 taskset -c $cores $rt/dotnet $D/lab/$b/MoeSharp.Benchmarks.dll x $thr grouped; }
for r in 1 2; do
  echo "== round $r"
  for g in 2 3; do for b in main new; do lab $b 2,3 2 LAB_G=$g LAB_ROUNDS=3; done; done
  for g in 2 3; do for b in main new; do lab $b 0-3 4 LAB_G=$g LAB_ROUNDS=3; done; done
done 2>&1 | tee $OUT/e.txt
date -u
cp $D/lab/new/MoeSharp.dll $D/app/MoeSharp.dll
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/e.jsonl --log $OUT/e-log.txt > $OUT/e.md 2>&1
echo "compare rc $?"
grep -E '^\|' $OUT/e.md | grep -v -- '---' | cut -c1-220
grep -E "^### GEMM" $OUT/e.md | cut -c1-400
date -u
