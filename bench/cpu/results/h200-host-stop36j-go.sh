#!/usr/bin/env bash
# Stop 36, call J: the committed build (947586c; its library is 45f4fdf's) beside PyTorch, both layer steps (T 2048
# and T 8192): 2 threads on cores 2-3 (one round), then 16 threads (two alternating rounds).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
timeout 150 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --layer-rounds 1 --skip gemm,dispatch,exchange,run --jsonl $OUT/j2.jsonl --log $OUT/j2-log.txt > $OUT/j2.md 2>&1
echo "layers 2 rc $?"; date -u
timeout 100 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 80 --layer-rounds 2 --skip gemm,dispatch,exchange,run --jsonl $OUT/j16.jsonl --log $OUT/j16-log.txt > $OUT/j16.md 2>&1
echo "layers 16 rc $?"; date -u
for f in j2 j16; do grep -E '^\|' $OUT/$f.md | grep -v -- '---' | cut -c1-250; done
