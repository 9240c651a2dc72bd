#!/usr/bin/env bash
# Stop 27, call A: the lone small product's task grid (this build) against main's narrowing, back to back and in
# bench-cpu, beside MKL; then the 2-thread GEMM table with the stop-26 sampling defaults on cores 0-1 and 2-3.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
{ date -u; lscpu | grep -E 'Model|^CPU\(s\)|L1d|L2|L3|Thread'; python3 -c 'import torch; print("torch", torch.__version__)'; } | tee $OUT/machine.txt
rm -rf /tmp/lab-main /tmp/app-main; cp -r $D/corelab /tmp/lab-main; cp $D/variants/main/MoeSharp.dll /tmp/lab-main/
cp -r $D/app /tmp/app-main; cp $D/variants/main/MoeSharp.dll /tmp/app-main/
all=$(nproc)
echo "== lone scaling (GFLOP/s, median of 51 back-to-back calls after 20)"
for r in 1 2; do
  echo "-- round $r: this"; DOTNET_ROOT=$rt timeout 100 $rt/dotnet $D/corelab/MoeSharp.Benchmarks.dll all $all lone
  echo "-- round $r: main"; DOTNET_ROOT=$rt timeout 100 $rt/dotnet /tmp/lab-main/MoeSharp.Benchmarks.dll all $all lone
  echo "-- round $r: MKL"; OMP_NUM_THREADS=$all timeout 100 python3 $D/cpu/mkl_lone.py $all
done 2>&1 | tee $OUT/lone-scaling.txt
echo "== bench-cpu gemm, $all threads: main's library, then this build in compare.py beside MKL, twice"
for r in 1 2; do
  MOESHARP_THREADS=$all DOTNET_ROOT=$rt timeout 120 $rt/dotnet /tmp/app-main/moe.dll bench-cpu --what gemm --json --threads $all --fma-lanes 16 > $OUT/main-gemm$all-r$r.jsonl 2>&1
  python3 - $OUT/main-gemm$all-r$r.jsonl <<'PY'
import json,sys
for l in open(sys.argv[1]):
    if not l.startswith('{'): continue
    j=json.loads(l)
    if j.get('what')=='gemm': print('main', j.get('shape') or j.get('name'), j.get('product') or j.get('variant'), round(j.get('gflops',0)), {k:v for k,v in j.items() if 'adjacent' in k.lower()})
PY
done
timeout 300 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads $all --fma-lanes 16 \
  --timeout 100 --gemm-rounds 2 --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm$all.jsonl --log $OUT/gemm$all-log.txt > $OUT/gemm$all.md 2>&1
grep -E '^\|' $OUT/gemm$all.md | grep -v -- '---' | cut -c1-220
for cores in 0,1 2,3; do rounds=$([[ $cores == 0,1 ]] && echo 2 || echo 1)
  echo "== GEMM 2 threads on cores $cores (this build = main on this path), 2 rounds"
  timeout 280 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --cores $cores --threads 2 --fma-lanes 16 \
    --timeout 100 --gemm-rounds $rounds --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm2-$cores.jsonl --log $OUT/gemm2-$cores-log.txt > $OUT/gemm2-$cores.md 2>&1
  grep -E '^\|' $OUT/gemm2-$cores.md | grep -v -- '---' | cut -c1-220
done
date -u
