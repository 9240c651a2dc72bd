#!/usr/bin/env bash
# Stop 37, call D, on the committed build (e4ecef0): (1) compare.py's dispatch + combine, in-process all-to-all-v and
# default `moe run` rows at 2 threads (cores 2-3) and 16, T 8192 / D 2048 as in the fifth run (stop 22), medians of 5.
# (2) compare.py's GEMM table at 2 threads (cores 2-3, three rounds): a second sample of the committed build.
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 PYTHONUNBUFFERED=1
R=/tmp/raw; mkdir -p $R
{ date -u; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket)'; grep -m1 'cpu MHz' /proc/cpuinfo; } > $OUT/machine.txt
date -u
timeout 240 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2,16 --cores 2,3 --fma-lanes 16 \
  --tokens 8192 --dim 2048 --repeats 5 --timeout 90 --skip gemm,layer,large-layer --jsonl $R/x.jsonl --log $R/x-log.txt > $OUT/x.md 2>&1
echo "dispatch/exchange/run rc $?"; date -u
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $R/g2.jsonl --log $R/g2-log.txt > $OUT/g2.md 2>&1
echo "gemm 2 rc $?"; date -u
for f in x g2; do echo "== $f.jsonl"; cat $R/$f.jsonl; echo "== $f-log.txt"; cat $R/$f-log.txt; done > $OUT/raw.txt
cat $OUT/x.md | cut -c1-250
grep -E '^\|' $OUT/g2.md | grep -v -- '---' | cut -c1-250
