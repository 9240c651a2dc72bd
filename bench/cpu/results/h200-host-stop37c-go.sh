#!/usr/bin/env bash
# Stop 37, call C, on the committed build (e4ecef0): (1) LoneAbLab, main (7afad8d) and cand (the committed in-place
# kernels) alternating, 256 x 512 x 512 on 2 threads (cores 2-3) six times. (2) compare.py's GEMM tables at 2 threads
# (cores 2-3, five rounds) and 16 (three rounds); both layer steps at 2 threads (one round) and at 16 (two).
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
R=/tmp/raw; mkdir -p $R
date -u
for i in 1 2 3 4 5 6; do for b in main cand; do
  MOESHARP_THREADS=2 taskset -c 2,3 dotnet $D/lone/$b/MoeSharp.Benchmarks.dll $b 2 2; done; done > $OUT/lone2.txt
cat $OUT/lone2.txt; date -u
timeout 290 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 5 --skip dispatch,exchange,run,layer,large-layer --jsonl $R/g2.jsonl --log $R/g2-log.txt > $OUT/g2.md 2>&1
echo "gemm 2 rc $?"; date -u
timeout 100 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 80 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $R/g16.jsonl --log $R/g16-log.txt > $OUT/g16.md 2>&1
echo "gemm 16 rc $?"; date -u
timeout 150 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --layer-rounds 1 --skip gemm,dispatch,exchange,run --jsonl $R/j2.jsonl --log $R/j2-log.txt > $OUT/j2.md 2>&1
echo "layers 2 rc $?"; date -u
timeout 100 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 80 --layer-rounds 2 --skip gemm,dispatch,exchange,run --jsonl $R/j16.jsonl --log $R/j16-log.txt > $OUT/j16.md 2>&1
echo "layers 16 rc $?"; date -u
for f in g2 g16 j2 j16; do echo "== $f.jsonl"; cat $R/$f.jsonl; echo "== $f-log.txt"; cat $R/$f-log.txt; done > $OUT/raw.txt
for f in g2 g16 j2 j16; do grep -E '^\|' $OUT/$f.md | grep -v -- '---' | cut -c1-250; done
