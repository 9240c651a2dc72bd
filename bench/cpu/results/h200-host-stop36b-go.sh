#!/usr/bin/env bash
# Stop 36, call B: (1) the shape lab with the old kernel (int loop, prefetches), the candidate (pointer loop, no
# prefetch), lean x2, embedded broadcasts, 8x48, and the padded probe, core 2; (2) `moe bench-cpu --what gemm` at 2
# threads on cores 2-3, main's MoeSharp.dll and the candidate's alternating, 3 rounds each.
set -u
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
cp -r $D/app /tmp/app-main && cp $D/main/MoeSharp.dll /tmp/app-main/
mkdir -p $OUT/ab; date -u
taskset -c 2 dotnet $D/shape/MoeSharp.Benchmarks.dll c2 80 > $OUT/lab-c2.txt; tail -n1 $OUT/lab-c2.txt
for r in 1 2 3; do
  for b in main cand; do
    app=$D/app; [[ $b == main ]] && app=/tmp/app-main
    MOESHARP_THREADS=2 timeout 120 taskset -c 2,3 dotnet $app/moe.dll bench-cpu --what gemm --threads 2 --fma-lanes 16 --json > $OUT/ab/$b-r$r.jsonl 2> $OUT/ab/$b-r$r.err || echo "$b r$r rc $?"
  done
done
mkdir -p $OUT/ab; date -u
python3 $D/cpu/ab_rows.py $OUT/ab
