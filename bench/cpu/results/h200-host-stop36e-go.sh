#!/usr/bin/env bash
# Stop 36, call E: where a call of the lone T 2048 expert (256 x 512 x 512, 2 threads, cores 2-3) goes, on the lean
# kernels (cand1) with per-task counters (pack, own tiles, helping; stop36_trace.patch); 12 rounds, then 4 rounds at
# 1 thread (core 2). The lab is LoneTraceLab.cs.txt with a rounds argument.
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
MOESHARP_THREADS=2 taskset -c 2,3 dotnet $D/trace/MoeSharp.Benchmarks.dll t2 2 12 > $OUT/trace2.txt
MOESHARP_THREADS=1 taskset -c 2 dotnet $D/trace/MoeSharp.Benchmarks.dll t1 1 4 > $OUT/trace1.txt
date -u
cat $OUT/trace2.txt $OUT/trace1.txt
