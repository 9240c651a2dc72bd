#!/usr/bin/env bash
# Stop 30, call G: the final build (private grid for one product of at most two default blocks per thread and for
# grouped calls past one wave, K <= 1024): compare.py's GEMM tables (three alternating rounds beside MKL) and both
# layer steps at 16 threads.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
date -u
timeout 520 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 3 --skip dispatch,exchange,run --jsonl $OUT/g.jsonl --log $OUT/g-log.txt > $OUT/g.md 2>&1
echo "compare rc $?"
grep -E '^\|' $OUT/g.md | grep -v -- '---' | cut -c1-220
grep -E "^### GEMM" $OUT/g.md | cut -c1-400
date -u
