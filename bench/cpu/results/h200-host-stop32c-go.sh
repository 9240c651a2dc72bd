#!/usr/bin/env bash
# Stop 32, call C: a lone product on 2 threads split into two row strips, each run on one thread (LAB_STRIPS=1), beside
# fba6042's shared pass (LAB_STRIPS=0, same lab build), CoreLab big 1024^3, alternating on cores 2-3; then the
# candidate build (row strips at 2 threads, HostGemm.RunRowStrips) in compare.py's 2-thread GEMM table, five rounds.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
for r in 1 2 3 4; do for s in 0 1; do
  LAB_STRIPS=$s LAB_ROUNDS=2 LAB_TAG="strips$s" taskset -c 2,3 timeout 60 dotnet $D/labstrips/MoeSharp.Benchmarks.dll x 2 big
done; done 2>&1 | tee $OUT/strips.txt
date -u
timeout 330 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 5 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/g2.jsonl --log $OUT/g2-log.txt > $OUT/g2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/g2.md | grep -v -- '---' | cut -c1-260
date -u
