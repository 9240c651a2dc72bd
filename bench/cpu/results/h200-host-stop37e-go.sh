#!/usr/bin/env bash
# Stop 37, call E (cand3 = 3629cc3 with the PanelsPerPacking rule later committed as 11e80ef): a lone product's
# shared panels at 2 threads. (1) LoneAbLab, 1024^3 on 2 threads (cores 2-3), head
# (3629cc3: a task claims one shared panel chunk at a time when more than two blocks share it) against cand3 (all it
# finds free whenever at most two threads run), one process per build alternating, eight times. (2) compare.py's GEMM
# table at 2 threads (cores 2-3, one round) on cand3.
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
R=/tmp/raw; mkdir -p $R
date -u
for i in 1 2 3 4 5 6 7 8; do for b in head cand3; do
  MOESHARP_THREADS=2 taskset -c 2,3 dotnet $D/lone/$b/MoeSharp.Benchmarks.dll $b 2 1 1024 1024 1024; done; done > $OUT/big2.txt
cat $OUT/big2.txt; date -u
timeout 120 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 100 --gemm-rounds 1 --skip dispatch,exchange,run,layer,large-layer --jsonl $R/g2.jsonl --log $R/g2-log.txt > $OUT/g2.md 2>&1
echo "gemm 2 rc $?"; date -u
for f in g2; do echo "== $f.jsonl"; cat $R/$f.jsonl; echo "== $f-log.txt"; cat $R/$f-log.txt; done > $OUT/raw.txt
grep -E '^\|' $OUT/g2.md | grep -v -- '---' | cut -c1-250
