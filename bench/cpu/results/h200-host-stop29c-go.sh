#!/usr/bin/env bash
# Stop 29, call C: bench-cpu's own procedure (a build whose HostGemmBenchmark takes LAB_SHAPES and LAB_NOPROBE,
# bench/cpu/lab/probe_lab.patch) on the lone 256x512x512 product: after the 1024^3 products or alone, with and without
# the adjacent probes; CoreLab seqfull and lone beside it. 16 threads, two interleaved rounds.
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
    if j.get("what")=="gemm" and ("(256x" in j["shape"] or j["shape"]=="1024^3"): r.append("%s %s %d" % (j["shape"][:6], j["product"][:4], round(j["gflops"])))
print(sys.argv[2], " | ".join(r))' "$@"; }
bc() { env $1 MOESHARP_THREADS=16 DOTNET_ROOT=$rt timeout 90 taskset -c 0-15 $rt/dotnet /tmp/labapp/moe.dll bench-cpu --what gemm --json --threads 16 --fma-lanes 16 > $OUT/$2.jsonl 2>&1; show $OUT/$2.jsonl "$2"; }
for r in 1 2; do
  bc "LAB_SHAPES=0,1" full-r$r
  bc "LAB_SHAPES=1" lone-r$r
  bc "LAB_SHAPES=1 LAB_NOPROBE=1" lonenp-r$r
  bc "LAB_SHAPES=0,1 LAB_NOPROBE=1" fullnp-r$r
  echo -n "lab seqfull r$r: "; DOTNET_ROOT=$rt timeout 60 taskset -c 0-15 $rt/dotnet $D/lone/diag/MoeSharp.Benchmarks.dll x 16 seqfull | tail -1
  echo -n "lab lone r$r: "; DOTNET_ROOT=$rt timeout 60 taskset -c 0-15 $rt/dotnet $D/lone/diag/MoeSharp.Benchmarks.dll x 16 lone | head -1
done 2>&1 | tee $OUT/e.txt
date -u
