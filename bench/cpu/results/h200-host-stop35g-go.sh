#!/usr/bin/env bash
# Stop 35, call G: d6a2df1's compare.py GEMM tables at 2 threads (cores 2-3, two rounds), each row also against its
# adjacent kernel ceiling (KernelCeilingProbe).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
timeout 150 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 100 --gemm-rounds 2 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/g2.jsonl --log $OUT/g2-log.txt > $OUT/g2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/g2.md | grep -v -- '---' | cut -c1-300
date -u
