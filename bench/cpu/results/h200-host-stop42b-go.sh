#!/usr/bin/env bash
# Stop 42, call B, on main: compare.py's GEMM tables beside MKL at 2 threads (cores 2-3, five rounds) and 16 threads
# (three rounds), as stop 39's call A.
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 PYTHONUNBUFFERED=1
R=/tmp/raw; mkdir -p $R
{ date -u; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|L1d|L2)'; grep -m1 'cpu MHz' /proc/cpuinfo; } > $OUT/machine.txt
date -u
timeout ${T16:-170} python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 80 --gemm-rounds ${R16:-3} --skip dispatch,exchange,run,layer,large-layer --jsonl $R/g16.jsonl --log $R/g16-log.txt > $OUT/g16.md 2>&1
echo "gemm 16 rc $?"; date -u
timeout ${T2:-330} python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 150 --gemm-rounds ${R2:-5} --skip dispatch,exchange,run,layer,large-layer --jsonl $R/g2.jsonl --log $R/g2-log.txt > $OUT/g2.md 2>&1
echo "gemm 2 rc $?"; date -u
for f in g16 g2; do echo "== $f.jsonl"; cat $R/$f.jsonl; echo "== $f-log.txt"; cat $R/$f-log.txt; done > $OUT/raw.txt
for f in g16 g2; do grep -E '^\|' $OUT/$f.md | grep -v -- '---' | awk -F'|' '{print $2"|"$3"|"$4"|"$8"|"$9"|"$12"|"$13}'; done
