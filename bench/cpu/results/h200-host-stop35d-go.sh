#!/usr/bin/env bash
# Stop 35, call D: KcLab (bench/cpu/lab/KcLab.cs.txt): the micro-kernel alone on L2-resident packed panels with the
# reduction in chunks of 128-512 steps, interleaved, 20 rounds a process, on core 2, core 3, core 2 again; then
# CoreLab's single-core form twice on core 2 for the grouped products beside them.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
{ for c in 2 3 2; do taskset -c $c timeout 120 dotnet $D/kclab/MoeSharp.Benchmarks.dll "c$c" 20; done
  for r in 1 2; do taskset -c 2 timeout 120 dotnet $D/corelab/MoeSharp.Benchmarks.dll "r$r-c2" 1; done; } 2>&1 | tee $OUT/kc.txt
date -u
