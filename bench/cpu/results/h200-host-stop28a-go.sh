#!/usr/bin/env bash
# Stop 28, call A: A read in place in the private grid (inplace, working tree on 43c6f01) against main (43c6f01):
# lone 256 x 512 x 512 back to back (CoreLab lone, 16 and 12 threads) beside MKL in five interleaved rounds; bench-cpu
# GEMM at 16 threads with each library, two rounds; compare.py's GEMM table at 16 threads beside MKL, two rounds.
# (mkl_lone.py's BrokenPipeError lines, from head -2, were dropped from lone.txt.)
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u; lscpu | grep -E 'Model name|^CPU\(s\)'
for r in 1 2 3 4 5; do
  for v in main inplace; do echo "-- round $r: $v"; DOTNET_ROOT=$rt timeout 60 taskset -c 0-15 $rt/dotnet $D/lone/$v/MoeSharp.Benchmarks.dll all 16 lone | head -2; done
  echo "-- round $r: MKL"; OMP_NUM_THREADS=16 timeout 60 taskset -c 0-15 python3 $D/cpu/mkl_lone.py 16 | head -2
done 2>&1 | tee $OUT/lone.txt
rm -rf /tmp/app-main; cp -r $D/app /tmp/app-main; cp $D/lone/main/MoeSharp.dll /tmp/app-main/
for r in 1 2; do for v in main inplace; do
  app=$D/app; [[ $v == main ]] && app=/tmp/app-main
  MOESHARP_THREADS=16 DOTNET_ROOT=$rt timeout 90 taskset -c 0-15 $rt/dotnet $app/moe.dll bench-cpu --what gemm --json --threads 16 --fma-lanes 16 > $OUT/bc-$v-$r.jsonl 2>&1
  python3 -c '
import json,sys
for l in open(sys.argv[1]):
    if not l.startswith("{"): continue
    j=json.loads(l)
    if j.get("what")=="gemm": print(sys.argv[2], j["shape"][:24], j["product"][:5], round(j["gflops"]), "meas %.0f%% adj %.0f%%" % (100*j["fractionOfMeasuredPeak"], 100*j["fractionOfAdjacentPeak"]))' $OUT/bc-$v-$r.jsonl "$v r$r"
done; done 2>&1 | tee $OUT/bc.txt
timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 100 --gemm-rounds 2 --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm16.jsonl --log $OUT/gemm16-log.txt > $OUT/gemm16.md 2>&1
grep -E '^\|' $OUT/gemm16.md | grep -v -- '---' | cut -c1-200
