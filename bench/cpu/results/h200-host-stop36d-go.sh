#!/usr/bin/env bash
# Stop 36, call D: TileLab (one thread's tiles of the lone T 2048 expert: packed A, A in place, A transposed in place,
# C prefetched in three ways, C a hot buffer; against cand1's kernels) on cores 2 and 3 at once, then core 9 alone.
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
taskset -c 2 dotnet $D/tile/MoeSharp.Benchmarks.dll c2 150 > $OUT/tile-c2.txt & taskset -c 3 dotnet $D/tile/MoeSharp.Benchmarks.dll c3 150 > $OUT/tile-c3.txt; wait
taskset -c 9 dotnet $D/tile/MoeSharp.Benchmarks.dll c9 100 > $OUT/tile-c9.txt
date -u
tail -qn1 $OUT/tile-*.txt
