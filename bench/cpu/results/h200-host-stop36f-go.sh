#!/usr/bin/env bash
# Stop 36, call F: on one machine, TileLab (one thread's tiles of the lone expert) on core 2 alone and on cores 2 and 3
# at once, beside the traced lone product (cand1 + counters) at 2 threads (cores 2-3) and at 1 (core 2).
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
for i in 1 2; do
taskset -c 2 dotnet $D/tile/MoeSharp.Benchmarks.dll c2alone 30 > $OUT/tile-c2alone-$i.txt
taskset -c 2 dotnet $D/tile/MoeSharp.Benchmarks.dll c2pair 30 > $OUT/tile-c2pair-$i.txt & taskset -c 3 dotnet $D/tile/MoeSharp.Benchmarks.dll c3pair 30 > $OUT/tile-c3pair-$i.txt; wait
MOESHARP_THREADS=2 taskset -c 2,3 dotnet $D/trace/MoeSharp.Benchmarks.dll t2 2 6 > $OUT/trace2-$i.txt
MOESHARP_THREADS=1 taskset -c 2 dotnet $D/trace/MoeSharp.Benchmarks.dll t1 1 3 > $OUT/trace1-$i.txt
done
date -u
tail -qn1 $OUT/tile-*.txt; cat $OUT/trace*.txt | cut -c1-330
