#!/usr/bin/env bash
# Stop 37, call F: call E's LoneAbLab again (1024^3 on 2 threads, cores 2-3, head 3629cc3 against cand3, one process
# per build alternating), ten times, two rounds a process.
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
for i in 1 2 3 4 5 6 7 8 9 10; do for b in head cand3; do
  MOESHARP_THREADS=2 taskset -c 2,3 dotnet $D/lone/$b/MoeSharp.Benchmarks.dll $b 2 2 1024 1024 1024; done; done > $OUT/big2.txt
cat $OUT/big2.txt; date -u
