#!/usr/bin/env bash
# Stop 29, call A (planned as stop 28's call C; run 2026-12-03 06:15 UTC): why bench-cpu's lone A·B reads low.
# bench-cpu (in-place build) at 16 threads as shipped
# (QuickJit off), with DOTNET_TC_QuickJit=1 and with DOTNET_TieredCompilation=0, one round; CoreLab seqfull (1024^3
# three layouts, then the lone product, probes between, as bench-cpu) at 16 threads. Then the lone product at 2
# threads (CoreLab lone, cores 0-1 and 2-3, two rounds): the in-place build (shared pass at 2 threads) against priv2,
# the same with the private grid taken up to two default blocks per thread (TotalBlocks <= 2 x threads). Last, the
# GEMM tables of compare.py beside MKL (in-place build, 5c06cc8): 16 threads (three alternating rounds) and 2
# threads on cores 2-3 (two).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
show() { python3 -c '
import json,sys
for l in open(sys.argv[1]):
    if not l.startswith("{"): continue
    j=json.loads(l)
    if j.get("what")=="gemm" and ("(256x" in j["shape"] or j["shape"]=="1024^3"): print(sys.argv[2], j["shape"][:16], j["product"][:5], round(j["gflops"]), "meas %.0f%% adj %.0f%%" % (100*j["fractionOfMeasuredPeak"], 100*j["fractionOfAdjacentPeak"]))' "$@"; }
for r in 1; do
  for v in shipped qj1 tc0; do
    env=""; [[ $v == qj1 ]] && env="DOTNET_TC_QuickJit=1"; [[ $v == tc0 ]] && env="DOTNET_TieredCompilation=0"
    env $env MOESHARP_THREADS=16 DOTNET_ROOT=$rt timeout 90 taskset -c 0-15 $rt/dotnet $D/app/moe.dll bench-cpu --what gemm --json --threads 16 --fma-lanes 16 > $OUT/bc16-$v-$r.jsonl 2>&1
    show $OUT/bc16-$v-$r.jsonl "16thr $v r$r"
  done
  DOTNET_ROOT=$rt timeout 60 taskset -c 0-15 $rt/dotnet $D/lone/inplace/MoeSharp.Benchmarks.dll x 16 seqfull
done 2>&1 | tee $OUT/c16.txt
for r in 1 2; do for v in inplace priv2; do for cores in 0-1 2-3; do
  echo -n "$v cores $cores r$r: "; DOTNET_ROOT=$rt timeout 60 taskset -c $cores $rt/dotnet $D/lone/$v/MoeSharp.Benchmarks.dll x 2 lone | head -1
done; done; done 2>&1 | tee $OUT/c2.txt
timeout 150 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 100 --gemm-rounds 3 --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm16.jsonl --log $OUT/gemm16-log.txt > $OUT/gemm16.md 2>&1
grep -E '^\|' $OUT/gemm16.md | grep -v -- '---' | cut -c1-230
timeout 260 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --cores 2,3 --threads 2 --fma-lanes 16 \
  --timeout 120 --gemm-rounds 2 --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm2.jsonl --log $OUT/gemm2-log.txt > $OUT/gemm2.md 2>&1
grep -E '^\|' $OUT/gemm2.md | grep -v -- '---' | cut -c1-230
cd $OUT && tar czf /tmp/out-c.tgz . && rm -rf $OUT/* && mv /tmp/out-c.tgz $OUT/
date -u
