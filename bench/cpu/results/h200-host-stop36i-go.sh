#!/usr/bin/env bash
# Stop 36, call I: a second sample of call H's build (the kernel of two steps a turn): the shape lab on cores 2 and 3
# at once (which state the cores are in), then compare.py's GEMM tables at 2 threads (cores 2-3, three rounds).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
taskset -c 2 dotnet $D/shape/MoeSharp.Benchmarks.dll c2 60 > /tmp/lab-c2.txt & taskset -c 3 dotnet $D/shape/MoeSharp.Benchmarks.dll c3 60 > /tmp/lab-c3.txt; wait
cat /tmp/lab-c2.txt /tmp/lab-c3.txt > $OUT/lab.txt
tail -qn1 /tmp/lab-c2.txt /tmp/lab-c3.txt
date -u
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/g2.jsonl --log $OUT/g2-log.txt > $OUT/g2.md 2>&1
echo "gemm 2 rc $?"; date -u
grep -E '^\|' $OUT/g2.md | grep -v -- '---' | cut -c1-250
