#!/usr/bin/env bash
# Stop 33, call B: main's build (cbdcdff: owned products with tail stealing, the packing prefetch) beside PyTorch:
# 2 threads on cores 2-3 (GEMM tables, five alternating rounds, and the T 2048 layer step), then 16 threads (GEMM,
# five rounds).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
date -u
timeout 330 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 5 --skip dispatch,exchange,run,large-layer --jsonl $OUT/b2.jsonl --log $OUT/b2-log.txt > $OUT/b2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/b2.md | grep -v -- '---' | cut -c1-260
date -u
timeout 150 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 5 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/b16.jsonl --log $OUT/b16-log.txt > $OUT/b16.md 2>&1
echo "compare 16 rc $?"
grep -E '^\|' $OUT/b16.md | grep -v -- '---' | cut -c1-260
date -u
