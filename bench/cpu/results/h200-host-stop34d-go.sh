#!/usr/bin/env bash
# Stop 34, call D: the lone 256 x 512 x 512 product on 2 threads (cores 2-3), where MKL led in calls A-C: CoreLab's
# lone form on a lab build of 36a5699 whose LAB_LONE picks the path (0 as built: private grid, A read in place, here 2
# blocks of 256 x 256; 1 the private grid packing A; 2 the shared pass; 3 the private grid in 2 row blocks of 132 x 512;
# 4 in 4 blocks of 132 x 256), beside mkl_lone.py, four rotating rounds; then compare.py's 2-thread GEMM tables on
# 36a5699 (three rounds).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
L() { echo -n "v$1 "; LAB_LONE=$1 taskset -c 2,3 timeout 60 dotnet $D/lone/MoeSharp.Benchmarks.dll x 2 lone | head -1; }
M() { MKL_NUM_THREADS=2 OMP_NUM_THREADS=2 taskset -c 2,3 timeout 60 python3 $D/cpu/mkl_lone.py 2 | head -1; }
V=(0 1 2 3 4 M)
{ for r in 0 1 2 3; do for q in 0 1 2 3 4 5; do v=${V[$(( (q + r) % 6 ))]}; if [ $v = M ]; then M; else L $v; fi; done; done; } 2>&1 | tee $OUT/lone.txt
date -u
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/d2.jsonl --log $OUT/d2-log.txt > $OUT/d2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/d2.md | grep -v -- '---' | cut -c1-260
date -u
