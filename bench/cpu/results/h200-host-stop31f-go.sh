#!/usr/bin/env bash
# Stop 31, call F: the final build (84f73e2) in compare.py's GEMM tables: 16 threads (three alternating rounds beside
# MKL), then 2 threads on cores 2-3 (three rounds).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
date -u
timeout 150 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/f16.jsonl --log $OUT/f16-log.txt > $OUT/f16.md 2>&1
echo "compare 16 rc $?"
grep -E '^\|' $OUT/f16.md | grep -v -- '---' | cut -c1-220
grep -E "^### GEMM" $OUT/f16.md | cut -c1-400
date -u
timeout 160 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/f2.jsonl --log $OUT/f2-log.txt > $OUT/f2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/f2.md | grep -v -- '---' | cut -c1-220
grep -E "^### GEMM" $OUT/f2.md | cut -c1-400
date -u
