#!/usr/bin/env bash
# Stop 27, call I: the private-packing grid (priv, HEAD 7a30525) against the same grid whose tasks also take the untaken
# tiles of other blocks (steal, the working tree), lone 256 x 512 x 512 back to back (CoreLab lone) beside MKL in three
# interleaved rounds; then bench-cpu's GEMM at 16 threads with each library, two rounds.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
for r in 1 2 3; do
  for v in priv steal; do echo "-- round $r: $v"; DOTNET_ROOT=$rt timeout 100 $rt/dotnet $D/lone/$v/MoeSharp.Benchmarks.dll all 16 lone | head -3; done
  echo "-- round $r: MKL"; OMP_NUM_THREADS=16 timeout 100 python3 $D/cpu/mkl_lone.py 16 | head -3
done 2>&1 | tee $OUT/lone.txt
for v in priv steal; do rm -rf /tmp/app-$v; cp -r $D/app /tmp/app-$v; cp $D/lone/$v/MoeSharp.dll /tmp/app-$v/; done
for r in 1 2; do for v in priv steal; do
  MOESHARP_THREADS=16 DOTNET_ROOT=$rt timeout 120 taskset -c 0-15 $rt/dotnet /tmp/app-$v/moe.dll bench-cpu --what gemm --json --threads 16 --fma-lanes 16 > $OUT/bc-$v-$r.jsonl 2>&1
  python3 -c '
import json,sys
for l in open(sys.argv[1]):
    if not l.startswith("{"): continue
    j=json.loads(l)
    if j.get("what")=="gemm": print(sys.argv[2], j["shape"][:24], j["product"][:5], round(j["gflops"]), "meas %.0f%% adj %.0f%%" % (100*j["fractionOfMeasuredPeak"], 100*j["fractionOfAdjacentPeak"]))' $OUT/bc-$v-$r.jsonl "$v r$r"
done; done 2>&1 | tee $OUT/bc.txt
cd $OUT && tar czf /tmp/out-i.tgz . && rm -rf $OUT/* && mv /tmp/out-i.tgz $OUT/
date -u
