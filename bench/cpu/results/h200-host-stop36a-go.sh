#!/usr/bin/env bash
# Stop 36, call A: ShapeLab (bench/cpu/lab/ShapeLab.cs.txt, first form: lib12x32 = main's prefetching Kernel512,
# lean12x32, eb12x32, eb24x16, sep8x48, eb8x48, probeP1) on cores 2 and 3 at once, core 2 alone, core 9 alone.
bash .device/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH
lscpu | grep -E "Model name|Thread|Core|Socket|NUMA node0|L1d|L2"
L="dotnet .device/shape/MoeSharp.Benchmarks.dll"
taskset -c 2 $L c2pair 160 > $OUT/c2pair.txt & taskset -c 3 $L c3pair 160 > $OUT/c3pair.txt; wait
taskset -c 2 $L c2alone 160 > $OUT/c2alone.txt
taskset -c 9 $L c9alone 100 > $OUT/c9alone.txt
tail -n1 $OUT/*.txt
