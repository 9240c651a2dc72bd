#!/usr/bin/env bash
# Stop 37, call A: the in-place kernels two steps a turn. (1) LoneAbLab, one process per build alternating: main
# (7afad8d) and cand (row-major and transposed A read in place two steps a turn): 256 x 512 x 512 on 2 threads (cores
# 2-3) six times, on 16 threads three times, 1024^3 on 16 threads twice. (2) compare.py's GEMM table at 2 threads
# (cores 2-3, five rounds) on cand.
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
for i in 1 2 3 4 5 6; do for b in main cand; do
  MOESHARP_THREADS=2 taskset -c 2,3 dotnet $D/lone/$b/MoeSharp.Benchmarks.dll $b 2 2; done; done > $OUT/lone2.txt
for i in 1 2 3; do for b in main cand; do
  MOESHARP_THREADS=16 dotnet $D/lone/$b/MoeSharp.Benchmarks.dll $b 16 2; done; done > $OUT/lone16.txt
for i in 1 2; do for b in main cand; do
  MOESHARP_THREADS=16 dotnet $D/lone/$b/MoeSharp.Benchmarks.dll $b 16 1 1024 1024 1024; done; done > $OUT/big16.txt
date -u
cat $OUT/lone2.txt $OUT/lone16.txt $OUT/big16.txt
timeout 290 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 5 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/g2.jsonl --log $OUT/g2-log.txt > $OUT/g2.md 2>&1
echo "gemm 2 rc $?"; date -u
grep -E '^\|' $OUT/g2.md | grep -v -- '---' | cut -c1-250
