#!/usr/bin/env bash
# Stop 33, call C: the layer step at 2 threads (cores 2-3), a3e547e (old: whole products per thread) against cbdcdff
# (new: owned products with tail stealing), alternating, each its MoeSharp.dll in a copy of the same published app;
# PyTorch's step beside them; then compare.py's 2-thread GEMM tables on new, three rounds.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
for v in old new; do rm -rf /tmp/app-$v; cp -r $D/app /tmp/app-$v; cp $D/dll-$v/MoeSharp.dll /tmp/app-$v/; done
T() { local v=$1 t=$2 s=$3 dim=$4; echo -n "$v T$t: "; MOESHARP_THREADS=2 taskset -c 2,3 timeout 120 dotnet /tmp/app-$v/moe.dll train --steps $s \
  --shared-hidden 0 --log-every 100000 --tokens $t --dim $dim --hidden $dim --experts 16 --top-k 2 2>&1 | grep -E "step time|final loss"; }
Y() { local t=$1 dim=$2; echo -n "torch T$t: "; OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 taskset -c 2,3 timeout 120 python3 $D/cpu/torch_peer.py layer \
  --threads 2 --warmup 1 --iters 5 --tokens $t --dim $dim --hidden $dim --experts 16 --top-k 2; }
{
date -u
for r in 1 2 3 4; do T old 2048 8 512; T new 2048 8 512; T new 2048 8 512; T old 2048 8 512; done
Y 2048 512; Y 2048 512
date -u
T old 8192 4 1024; T new 8192 4 1024; Y 8192 1024
date -u
} 2>&1 | tee $OUT/layer.txt
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 3 --skip dispatch,exchange,run,layer,large-layer --jsonl $OUT/c2.jsonl --log $OUT/c2-log.txt > $OUT/c2.md 2>&1
echo "compare 2 rc $?"
grep -E '^\|' $OUT/c2.md | grep -v -- '---' | cut -c1-260
date -u
