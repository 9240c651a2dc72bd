#!/usr/bin/env bash
# Stop 34, call E: the lone 256 x 512 x 512 product on 2 threads (cores 2-3) with the private grid packing B in chunks
# of the reduction and computing each chunk's tiles before packing the next (LAB_LONE 5: 384 steps, 6: 256), against
# the whole reduction packed first (0, 36a5699), beside mkl_lone.py, four rotating rounds.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
date -u
L() { echo -n "v$1 "; LAB_LONE=$1 taskset -c 2,3 timeout 60 dotnet $D/lone/MoeSharp.Benchmarks.dll x 2 lone | head -1; }
M() { MKL_NUM_THREADS=2 OMP_NUM_THREADS=2 taskset -c 2,3 timeout 60 python3 $D/cpu/mkl_lone.py 2 2>/dev/null | head -1; }
V=(0 5 6 M)
{ for r in 0 1 2 3 4; do for q in 0 1 2 3; do v=${V[$(( (q + r) % 4 ))]}; if [ $v = M ]; then M; else L $v; fi; done; done; } 2>&1 | tee $OUT/lone.txt
date -u
