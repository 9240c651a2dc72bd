#!/usr/bin/env bash
# Stop 35, call A: the lone 256 x 512 x 512 product on 2 threads (cores 2-3), where a thread's time goes on main's path
# (LAB_OLD=1: every B panel packed first) and on the panel pipeline of bench/cpu/lab/stop35_panel_pipeline.patch
# (LAB_OLD=0: B packed a column panel at a time, the next panel's source prefetched from inside the tiles), beside
# mkl_lone.py, three rotating rounds; then main's compare.py GEMM tables at 2 threads (cores 2-3, five rounds) and 16
# threads (three rounds).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
T() { LAB_OLD=$1 taskset -c 2,3 timeout 60 dotnet $D/trace/MoeSharp.Benchmarks.dll "old$1" 2; }
M() { MKL_NUM_THREADS=2 OMP_NUM_THREADS=2 taskset -c 2,3 timeout 60 python3 $D/cpu/mkl_lone.py 2 2>&1 | head -1; }
{ for r in 0 1 2; do case $r in 0) T 1; T 0; M;; 1) T 0; M; T 1;; 2) M; T 1; T 0;; esac; done; } 2>&1 | tee $OUT/trace.txt
date -u
timeout 260 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 5 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/a2.jsonl --log $OUT/a2-log.txt > $OUT/a2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/a2.md | grep -v -- '---' | cut -c1-260
date -u
timeout 120 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 100 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/a16.jsonl --log $OUT/a16-log.txt > $OUT/a16.md 2>&1
echo "compare 16 rc $?"
grep -E '^\|' $OUT/a16.md | grep -v -- '---' | cut -c1-260
date -u
