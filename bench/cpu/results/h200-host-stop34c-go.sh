#!/usr/bin/env bash
# Stop 34, call C: the lab build's transposing-pack prefetch off and on (LAB_TPF 0 / 1) in three more alternations on
# one thread (core 2); then 36a5699 beside PyTorch: at 16 threads the layer steps (T 2048 and T 8192, three alternating
# rounds) and the GEMM tables (three rounds); at 2 threads on cores 2-3 the GEMM tables (three rounds) and both layer
# steps (one round).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
P() { local t=$1; LAB_TPF=$t LAB_CPF=0 LAB_REPS=11 taskset -c 2 timeout 60 dotnet $D/phase-tpf/MoeSharp.Benchmarks.dll "tpf$t-c2" 1; }
{ for r in 1 2 3; do P 0; P 1; done; } 2>&1 | tee $OUT/phase.txt
date -u
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 100 --layer-rounds 3 --gemm-rounds 3 --skip dispatch,exchange,run --jsonl $OUT/c16.jsonl --log $OUT/c16-log.txt > $OUT/c16.md 2>&1
echo "compare 16 rc $?"
grep -E '^\|' $OUT/c16.md | grep -v -- '---' | cut -c1-260
date -u
timeout 260 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 3 --skip dispatch,exchange,run --jsonl $OUT/c2.jsonl --log $OUT/c2-log.txt > $OUT/c2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/c2.md | grep -v -- '---' | cut -c1-260
date -u
