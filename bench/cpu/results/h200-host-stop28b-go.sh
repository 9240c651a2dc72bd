#!/usr/bin/env bash
# Stop 28, call B: does operand alignment or bench-cpu's sequence (a probe before and after each layout, 11 timed runs)
# explain bench-cpu's low lone rows? CoreLab align / seq with the in-place build at 16 threads and at 2 (cores 0-1),
# two rounds, main's build's seq beside; then the T 2048 layer step at 16 threads, in-place vs main, beside PyTorch.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
for r in 1 2; do
  echo "-- round $r"
  DOTNET_ROOT=$rt timeout 60 taskset -c 0-15 $rt/dotnet $D/lone/inplace/MoeSharp.Benchmarks.dll x 16 align
  DOTNET_ROOT=$rt timeout 60 taskset -c 0-1 $rt/dotnet $D/lone/inplace/MoeSharp.Benchmarks.dll x 2 align
  for v in inplace main; do
    echo "$v:"
    DOTNET_ROOT=$rt timeout 60 taskset -c 0-15 $rt/dotnet $D/lone/$v/MoeSharp.Benchmarks.dll x 16 seq
    DOTNET_ROOT=$rt timeout 60 taskset -c 0-1 $rt/dotnet $D/lone/$v/MoeSharp.Benchmarks.dll x 2 seq
  done
done 2>&1 | tee $OUT/align.txt
ROUNDS=2 SHAPES=2048x512 THREADS=16 STEPS=12 PEER=1 timeout 200 bash $D/cpu/device-ab-layer.sh $D > $OUT/ab.txt 2>&1
cat $OUT/ab-layer.md
