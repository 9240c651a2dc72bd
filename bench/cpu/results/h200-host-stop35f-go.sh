#!/usr/bin/env bash
# Stop 35, call F: main (427d206, the GEMM code of 36a5699) beside PyTorch, the layer steps only: T 2048 at 2 threads
# (cores 2-3) and at 16, three alternating rounds each.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
timeout 150 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 100 --layer-rounds 3 --skip gemm,dispatch,exchange,run,large-layer --jsonl $OUT/f2.jsonl --log $OUT/f2-log.txt > $OUT/f2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/f2.md | grep -v -- '---' | cut -c1-220
date -u
timeout 150 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 100 --layer-rounds 3 --skip gemm,dispatch,exchange,run,large-layer --jsonl $OUT/f16.jsonl --log $OUT/f16-log.txt > $OUT/f16.md 2>&1
echo "compare 16 rc $?"
grep -E '^\|' $OUT/f16.md | grep -v -- '---' | cut -c1-220
date -u
