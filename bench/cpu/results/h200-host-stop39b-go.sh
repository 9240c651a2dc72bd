#!/usr/bin/env bash
# Stop 39, call B, on main (2a53923): compare.py's dispatch + combine, in-process all-to-all-v and default `moe run` at 2
# threads (cores 2-3) and 16 (T 8192 / D 2048, medians of 5), then both layer steps beside PyTorch (one round at 2
# threads on cores 2-3, one at 16).
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 PYTHONUNBUFFERED=1
R=/tmp/raw; mkdir -p $R
{ date -u; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|L1d|L2)'; grep -m1 'cpu MHz' /proc/cpuinfo; } > $OUT/machine-b.txt
date -u
timeout 240 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2,16 --cores 2,3 --fma-lanes 16 \
  --tokens 8192 --dim 2048 --repeats 5 --timeout 90 --skip gemm,layer,large-layer --jsonl $R/x.jsonl --log $R/x-log.txt > $OUT/x.md 2>&1
echo "dispatch/exchange/run rc $?"; date -u
timeout 300 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2,16 --cores 2,3 --fma-lanes 16 \
  --timeout 140 --layer-rounds 1 --skip gemm,dispatch,exchange,run --jsonl $R/l.jsonl --log $R/l-log.txt > $OUT/l.md 2>&1
echo "layers rc $?"; date -u
for f in x l; do echo "== $f.jsonl"; cat $R/$f.jsonl; echo "== $f-log.txt"; cat $R/$f-log.txt; done > $OUT/raw-b.txt
cat $OUT/x.md | grep -E '^(\||###)' | grep -v -- '---' | cut -c1-200
cat $OUT/l.md | grep -E '^(\||###)' | grep -v -- '---' | cut -c1-250
