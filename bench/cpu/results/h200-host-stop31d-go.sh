#!/usr/bin/env bash
# Stop 31, call D: compare.py's GEMM tables at 2 threads (cores 2-3) and 16 on 29d80bf's library (three alternating
# rounds beside MKL); when the 16-thread probe reads the fast state (above 3,000 GFLOP/s), the layer steps too.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
date -u
timeout 300 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2,16 --cores 2,3 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/d.jsonl --log $OUT/d-log.txt > $OUT/d.md 2>&1
echo "compare rc $?"
grep -E '^\|' $OUT/d.md | grep -v -- '---' | cut -c1-220
grep -E "^### GEMM" $OUT/d.md | cut -c1-400
fast=$(python3 -c "
import json
v=[json.loads(l) for l in open('$OUT/d.jsonl')]
print(max(r['gflops'] for r in v if r.get('what')=='fma-peak' and r.get('bits')==512 and r.get('threads')==16))")
echo "highest 16-thread 512-bit probe $fast"
date -u
if python3 -c "import sys; sys.exit(0 if $fast > 3000 else 1)"; then
  timeout 250 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2,16 --cores 2,3 --fma-lanes 16 \
    --timeout 120 --skip gemm,dispatch,exchange,run --jsonl $OUT/d2.jsonl --log $OUT/d2-log.txt > $OUT/d2.md 2>&1
  echo "compare layers rc $?"
  grep -E '^\|' $OUT/d2.md | grep -v -- '---' | cut -c1-220
  date -u
fi
