#!/usr/bin/env bash
# Stop 34, call A: software prefetch in the transposing packs (TransposeInto: while a group of rows is transposed, the
# next 8 rows' lines at the same steps). One timed lab build; LAB_TPF picks the prefetch (0 none = main, 1 next rows T0,
# 2 next rows T1, 3 the same rows 4 lines ahead T0) and LAB_CPF the contiguous packs' (0 main's T0 4 steps ahead, 1 T1 8
# steps ahead, 2 both). Then the candidate (TPF 1, CPF 0) in compare.py's 2-thread GEMM tables beside MKL, 3 rounds.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u; lscpu | grep -E "Model name|^CPU\(s\)|Model:|MHz|L2|L3"
P() { local t=$1 c=$2 cores=$3 n=$4; LAB_TPF=$t LAB_CPF=$c LAB_REPS=11 taskset -c $cores timeout 60 dotnet $D/phase-tpf/MoeSharp.Benchmarks.dll "tpf$t-cpf$c-c$cores" $n; }
{
echo "== one thread, core 2: TPF 0..3 (CPF 0), then CPF 1, 2 (TPF 1)"
for r in 1 2; do P 0 0 2 1; P 1 0 2 1; P 2 0 2 1; P 3 0 2 1; P 1 1 2 1; P 1 2 2 1; done
echo "== two threads, cores 2-3: TPF 0, 1, 2, 3 rotating (CPF 0)"
V=(0 1 2 3)
for r in 0 1 2 3; do for q in 0 1 2 3; do P ${V[$(( (q + r) % 4 ))]} 0 2,3 2; done; done
} 2>&1 | tee $OUT/phase.txt
date -u
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/a2.jsonl --log $OUT/a2-log.txt > $OUT/a2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/a2.md | grep -v -- '---' | cut -c1-260
date -u
timeout 120 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 100 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/a16.jsonl --log $OUT/a16-log.txt > $OUT/a16.md 2>&1
echo "compare 16 rc $?"
grep -E '^\|' $OUT/a16.md | grep -v -- '---' | cut -c1-260
date -u
