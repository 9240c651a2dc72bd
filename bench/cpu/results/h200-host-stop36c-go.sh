#!/usr/bin/env bash
# Stop 36, call C: one product on 2 threads (cores 2-3) in three builds of the library, alternating processes
# (LoneAbLab): main (055d7d5), cand1 (kernels without prefetches, loops on B's pointer), cand2 (cand1 + a fresh tile's
# C lines prefetched). 256 x 512 x 512 six times, 1024^3 three times, then 256 x 512 x 512 on 16 threads three times.
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
for i in 1 2 3 4 5 6; do for b in main cand1 cand2; do
  MOESHARP_THREADS=2 taskset -c 2,3 dotnet $D/lone/$b/MoeSharp.Benchmarks.dll $b 2 2; done; done > $OUT/lone2.txt
for i in 1 2 3; do for b in main cand1 cand2; do
  MOESHARP_THREADS=2 taskset -c 2,3 dotnet $D/lone/$b/MoeSharp.Benchmarks.dll $b 2 1 1024 1024 1024; done; done > $OUT/big2.txt
for i in 1 2 3; do for b in main cand1 cand2; do
  MOESHARP_THREADS=16 dotnet $D/lone/$b/MoeSharp.Benchmarks.dll $b 16 2; done; done > $OUT/lone16.txt
date -u
cat $OUT/lone2.txt $OUT/big2.txt $OUT/lone16.txt
