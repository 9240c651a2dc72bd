#!/usr/bin/env bash
# Stop 32, call A: variants of the host GEMM at 2 threads (cores 2-3) and 16, interleaved, CoreLab forms.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
L() { local v=$1; shift; dotnet $D/lab/$v/MoeSharp.Benchmarks.dll "$@"; }
date -u; lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|MHz|L1d|L2|L3"
echo "== single core: probe, kernel on L2-resident panels, grouped 16 x 256x512x512 on one thread"
for v in base pf2 inplace; do taskset -c 2 dotnet $D/lab/$v/MoeSharp.Benchmarks.dll c2-$v 1; done
for v in base inplace; do taskset -c 3 dotnet $D/lab/$v/MoeSharp.Benchmarks.dll c3-$v 1; done
V=(base pf2 kc256 claim2 inplace)
echo "== 2 threads, cores 2,3, lone products"; date -u
for r in 0 1 2; do
  for q in 0 1 2 3 4; do v=${V[$(( (q + r) % 5 ))]}
    LAB_ROUNDS=2 LAB_TAG=$v taskset -c 2,3 timeout 60 dotnet $D/lab/$v/MoeSharp.Benchmarks.dll x 2 big
    LAB_M=256 LAB_N=512 LAB_K=512 LAB_ROUNDS=3 LAB_TAG=$v taskset -c 2,3 timeout 60 dotnet $D/lab/$v/MoeSharp.Benchmarks.dll x 2 big
  done
  LAB_M=256 LAB_N=512 LAB_K=512 LAB_ROUNDS=3 LAB_TAG=shared2 taskset -c 2,3 timeout 60 dotnet $D/lab/shared2/MoeSharp.Benchmarks.dll x 2 big
done
echo "== 2 threads, grouped (one product per thread)"; date -u
for r in 0 1; do for v in base pf2 kc256 inplace; do
  LAB_ROUNDS=1 LAB_TAG=$v taskset -c 2,3 timeout 60 dotnet $D/lab/$v/MoeSharp.Benchmarks.dll x 2 grouped
  LAB_M=256 LAB_N=512 LAB_K=512 LAB_ROUNDS=2 LAB_TAG=$v taskset -c 2,3 timeout 60 dotnet $D/lab/$v/MoeSharp.Benchmarks.dll x 2 grouped
done; done
echo "== 16 threads"; date -u
for r in 0 1; do for v in base pf2 kc256 inplace; do
  LAB_ROUNDS=2 LAB_TAG=$v timeout 60 dotnet $D/lab/$v/MoeSharp.Benchmarks.dll x 16 big
  LAB_M=256 LAB_N=512 LAB_K=512 LAB_ROUNDS=3 LAB_TAG=$v timeout 60 dotnet $D/lab/$v/MoeSharp.Benchmarks.dll x 16 big
  LAB_M=256 LAB_N=512 LAB_K=512 LAB_ROUNDS=2 LAB_TAG=$v timeout 60 dotnet $D/lab/$v/MoeSharp.Benchmarks.dll x 16 grouped
done; done
date -u
