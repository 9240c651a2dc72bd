#!/usr/bin/env bash
# Stop 38, call F, on main (f073064): compare.py's GEMM tables at 2 threads (cores 2-3, three rounds) and 16 (two).
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
R=/tmp/raw; mkdir -p $R
date -u
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $R/g2.jsonl --log $R/g2-log.txt > $OUT/g2.md 2>&1
echo "gemm 2 rc $?"; date -u
timeout 100 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 80 --gemm-rounds 2 --skip dispatch,exchange,run,layer,large-layer --jsonl $R/g16.jsonl --log $R/g16-log.txt > $OUT/g16.md 2>&1
echo "gemm 16 rc $?"; date -u
for f in g2 g16; do echo "== $f.jsonl"; cat $R/$f.jsonl; echo "== $f-log.txt"; cat $R/$f-log.txt; done > $OUT/raw.txt
for f in g2 g16; do grep -E '^\|' $OUT/$f.md | grep -v -- '---' | awk -F'|' '{print $2"|"$3"|"$8"|"$9"|"$12"|"$13}'; done
