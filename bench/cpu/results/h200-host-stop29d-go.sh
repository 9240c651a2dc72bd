#!/usr/bin/env bash
# Stop 29, call F: bench-cpu's adjacent probe and the lone 256x512x512 product after it. The probe as shipped (16 new
# threads), on the GEMM's own worker team (LAB_PROBE=team), as shipped then 20 ms asleep (LAB_PROBE=sleep), and none
# (LAB_NOPROBE=1); shapes 1024^3 and the lone product; 16 threads three interleaved rounds, 2 threads on cores 2-3 two.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
rm -rf /tmp/labapp && cp -r $D/app /tmp/labapp && cp $D/labapp/*.dll /tmp/labapp/
date -u
show() { python3 -c '
import json,sys
r=[]
for l in open(sys.argv[1]):
    if not l.startswith("{"): continue
    j=json.loads(l)
    if j.get("what")=="gemm": r.append("%s %s %d/%s" % (j["shape"][:6], j["product"][:4], round(j["gflops"]), round(j["adjacentPeakGflops"]) if j.get("adjacentPeakGflops") else "-"))
print(sys.argv[2], " | ".join(r))' "$@"; }
bc() { env $1 LAB_SHAPES=0,1 MOESHARP_THREADS=$3 DOTNET_ROOT=$rt timeout 90 taskset -c $4 $rt/dotnet /tmp/labapp/moe.dll bench-cpu --what gemm --json --threads $3 --fma-lanes 16 > $OUT/$2.jsonl 2>&1; show $OUT/$2.jsonl "$2"; }
for r in 1 2 3; do
  bc "LAB_PROBE=shipped" shipped16-r$r 16 0-15
  bc "LAB_PROBE=team" team16-r$r 16 0-15
  bc "LAB_PROBE=sleep" sleep16-r$r 16 0-15
  bc "LAB_NOPROBE=1" none16-r$r 16 0-15
done 2>&1 | tee $OUT/f16.txt
for r in 1 2; do
  bc "LAB_PROBE=shipped" shipped2-r$r 2 2-3
  bc "LAB_PROBE=team" team2-r$r 2 2-3
  bc "LAB_NOPROBE=1" none2-r$r 2 2-3
done 2>&1 | tee $OUT/f2.txt
date -u
