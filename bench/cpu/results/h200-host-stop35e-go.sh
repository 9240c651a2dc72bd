#!/usr/bin/env bash
# Stop 35, call E: A's rows read where they lie in ComputeBlock (the shared pass and experts owned by a thread) when
# row-major A's rows lie at most 2 KiB apart. PhaseLab on the timed lab build (bench/cpu/lab/stop35_inplace_lab.patch),
# LAB_PACKA=1 (packed, as main) against 0 (in place), alternating, three rounds on one thread (core 2) and three on two
# (cores 2-3); then the candidate's compare.py GEMM tables at 2 threads (cores 2-3, five rounds).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
P() { LAB_PACKA=$1 LAB_REPS=11 taskset -c $2 timeout 60 dotnet $D/phase/MoeSharp.Benchmarks.dll "packa$1-c$2" $3; }
{ for r in 0 1 2; do if [ $r = 1 ]; then P 0 2 1; P 1 2 1; else P 1 2 1; P 0 2 1; fi; done
  for r in 0 1 2; do if [ $r = 1 ]; then P 0 2,3 2; P 1 2,3 2; else P 1 2,3 2; P 0 2,3 2; fi; done; } 2>&1 | tee $OUT/phase.txt
date -u
timeout 260 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 5 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/e2.jsonl --log $OUT/e2-log.txt > $OUT/e2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/e2.md | grep -v -- '---' | cut -c1-260
date -u
