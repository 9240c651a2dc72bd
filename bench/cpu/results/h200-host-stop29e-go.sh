#!/usr/bin/env bash
# Stop 29, call E: compare.py's GEMM tables (three alternating rounds beside MKL) and the T 2048 layer step, at 2
# threads on cores 2-3 and at 16 threads, with the probe on the worker team (45ccb9a).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
date -u
timeout 500 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2,16 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 3 --skip dispatch,exchange,run,large-layer --jsonl $OUT/e.jsonl --log $OUT/e-log.txt > $OUT/e.md 2>&1
grep -E '^\|' $OUT/e.md | grep -v -- '---' | cut -c1-200
date -u
