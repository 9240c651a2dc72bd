#!/usr/bin/env bash
# Stop 34, call B: 36a5699 (the transposing packs prefetch the next lines) beside PyTorch at 2 threads on cores 2-3:
# the T 2048 layer step in three alternating rounds, the GEMM tables in five; then the GEMM tables at 16 threads, three.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
date -u
timeout 360 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --layer-rounds 3 --gemm-rounds 5 --skip dispatch,exchange,run,large-layer --jsonl $OUT/b2.jsonl --log $OUT/b2-log.txt > $OUT/b2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/b2.md | grep -v -- '---' | cut -c1-260
date -u
timeout 120 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 100 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/b16.jsonl --log $OUT/b16-log.txt > $OUT/b16.md 2>&1
echo "compare 16 rc $?"
grep -E '^\|' $OUT/b16.md | grep -v -- '---' | cut -c1-260
date -u
