#!/usr/bin/env bash
# Stop 35, call B: does a core's one-thread GEMM slow down when its neighbour core runs the same work? CoreLab's
# single-core form (probe, the micro-kernel alone on L2-resident packed panels, 16 x 256 x 512 x 512 grouped on one
# thread) on core 2 alone, then on cores 2 and 3 at once (two processes), then on core 3 alone, three rounds (main's
# library, cc8d869).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
C() { taskset -c $1 timeout 120 dotnet $D/corelab/MoeSharp.Benchmarks.dll "$2" 1; }
{ for r in 1 2 3; do
  C 2 "r$r-c2-alone"
  C 2 "r$r-c2-pair" > /tmp/p2.txt & C 3 "r$r-c3-pair" > /tmp/p3.txt; wait; cat /tmp/p2.txt /tmp/p3.txt
  C 3 "r$r-c3-alone"
done; } 2>&1 | tee $OUT/pair.txt
date -u
