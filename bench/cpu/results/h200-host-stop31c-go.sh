#!/usr/bin/env bash
# Stop 31, call C: compare.py's GEMM tables at 16 threads on 29d80bf (three alternating rounds beside MKL); when the
# 512-bit probe reads the fast state (above 3,000 GFLOP/s), also both thread counts with the layer steps.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
date -u
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/c.jsonl --log $OUT/c-log.txt > $OUT/c.md 2>&1
echo "compare rc $?"
grep -E '^\|' $OUT/c.md | grep -v -- '---' | cut -c1-220
grep -E "^### GEMM" $OUT/c.md | cut -c1-400
fast=$(python3 -c "
import json
v=[json.loads(l) for l in open('$OUT/c.jsonl')]
print(max(r['gflops'] for r in v if r.get('what')=='fma-peak' and r.get('bits')==512))")
echo "highest 512-bit probe $fast"
date -u
if python3 -c "import sys; sys.exit(0 if $fast > 3000 else 1)"; then
  timeout 330 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2,16 --cores 2,3 --fma-lanes 16 \
    --timeout 150 --gemm-rounds 3 --skip dispatch,exchange,run --jsonl $OUT/c2.jsonl --log $OUT/c2-log.txt > $OUT/c2.md 2>&1
  echo "compare 2,16 rc $?"
  grep -E '^\|' $OUT/c2.md | grep -v -- '---' | cut -c1-220
  grep -E "^### GEMM" $OUT/c2.md | cut -c1-400
  date -u
fi
