#!/usr/bin/env bash
# Stop 36, call H: the kernel of two steps a turn (no prefetches). (1) The shape lab on cores 2 and 3 at once: the
# old prefetching kernel, the library's new one, the lab's own two-step loop, the padded probe P1. (2) compare.py's
# GEMM tables at 2 threads (cores 2-3, five rounds) and at 16 (three rounds). (3) The T 2048 layer steps beside
# PyTorch's, three alternating rounds at 2 threads (cores 2-3) and at 16.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
taskset -c 2 dotnet $D/shape/MoeSharp.Benchmarks.dll c2 100 > $OUT/lab-c2.txt & taskset -c 3 dotnet $D/shape/MoeSharp.Benchmarks.dll c3 100 > $OUT/lab-c3.txt; wait
tail -qn1 $OUT/lab-c2.txt $OUT/lab-c3.txt
date -u
timeout 290 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 150 --gemm-rounds 5 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/g2.jsonl --log $OUT/g2-log.txt > $OUT/g2.md 2>&1
echo "gemm 2 rc $?"; date -u
timeout 100 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 80 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/g16.jsonl --log $OUT/g16-log.txt > $OUT/g16.md 2>&1
echo "gemm 16 rc $?"; date -u
timeout 110 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 100 --layer-rounds 3 --skip gemm,dispatch,exchange,run,large-layer --jsonl $OUT/l2.jsonl --log $OUT/l2-log.txt > $OUT/l2.md 2>&1
echo "layer 2 rc $?"; date -u
timeout 80 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 70 --layer-rounds 3 --skip gemm,dispatch,exchange,run,large-layer --jsonl $OUT/l16.jsonl --log $OUT/l16-log.txt > $OUT/l16.md 2>&1
echo "layer 16 rc $?"; date -u
for f in g2 g16 l2 l16; do grep -E '^\|' $OUT/$f.md | grep -v -- '---' | cut -c1-250; done
