#!/usr/bin/env bash
# Stop 33, call A: where a thread's time goes (timed lab builds): a3e547e (old: whole products per thread), the owned
# products with tail stealing (new), new without the packing prefetch (nopf), new with the next row block's A rows
# prefetched into L2 during the current block (pfn), and pfn2 (that, or the next product's B columns and first A rows,
# claimed ahead, during a product's last block), and pfn3 (pfn2's lines prefetched from inside the kernel, one every
# four steps); then new in compare.py's 2-thread GEMM table beside MKL, five rounds.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u; lscpu | grep -E "Model name|^CPU\(s\)|Model:|MHz|L2|L3"
P() { local v=$1 cores=$2 t=$3; LAB_REPS=11 taskset -c $cores timeout 60 dotnet $D/phase-$v/MoeSharp.Benchmarks.dll "$v-c$cores" $t; }
{
echo "== one thread, core 2: packing prefetch (new) against none (nopf)"
for r in 1 2; do P new 2 1; P nopf 2 1; P pfn 2 1; P pfn2 2 1; P pfn3 2 1; done
echo "== two threads, cores 2-3: old, new, nopf, pfn, pfn2, pfn3 rotating"
V=(old new nopf pfn pfn2 pfn3)
for r in 0 1 2 3; do for q in 0 1 2 3 4 5; do P ${V[$(( (q + r) % 6 ))]} 2,3 2; done; done
} 2>&1 | tee $OUT/phase.txt
date -u
timeout 330 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 5 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/g2.jsonl --log $OUT/g2-log.txt > $OUT/g2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/g2.md | grep -v -- '---' | cut -c1-260
date -u
