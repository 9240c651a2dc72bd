#!/usr/bin/env bash
# Stop 33, call D: main's build (cbdcdff's library) beside PyTorch at 2 threads on cores 2-3: the T 2048 layer step in
# three alternating rounds (compare.py --layer-rounds 3), then the GEMM tables, three rounds.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
date -u
timeout 280 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --layer-rounds 3 --gemm-rounds 3 --skip dispatch,exchange,run,large-layer --jsonl $OUT/d2.jsonl --log $OUT/d2-log.txt > $OUT/d2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/d2.md | grep -v -- '---' | cut -c1-260
date -u
