#!/usr/bin/env bash
# Stop 32, call B: where a thread's time goes in the shared pass (timed lab build), then main's build (fba6042) in
# compare.py's GEMM tables beside MKL: 16 threads and 2 threads (cores 2-3), five alternating rounds each.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
taskset -c 2 dotnet $D/phase/MoeSharp.Benchmarks.dll core2 1 > $OUT/phase.txt 2>&1
taskset -c 2,3 dotnet $D/phase/MoeSharp.Benchmarks.dll cores2-3 2 >> $OUT/phase.txt 2>&1
cat $OUT/phase.txt
date -u
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 5 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/g16.jsonl --log $OUT/g16-log.txt > $OUT/g16.md 2>&1
echo "compare 16 rc $?"
grep -E '^\|' $OUT/g16.md | grep -v -- '---' | cut -c1-260
date -u
timeout 330 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 5 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/g2.jsonl --log $OUT/g2-log.txt > $OUT/g2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/g2.md | grep -v -- '---' | cut -c1-260
date -u
