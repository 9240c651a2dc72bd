#!/usr/bin/env bash
# Stop 25, call I: one product on 2 threads as two row slabs (this) against the build before (head), cores 0-1.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
echo "== lab5: lone 1024^3 and 256x512x512 products, 2 threads, median of 15 back-to-back" | tee $OUT/lab5.txt
for r in 1 2 3; do for b in head slab; do
  echo "[$b round $r]"; DOTNET_ROOT=$rt taskset -c 0-1 $rt/dotnet $D/lab5$b/MoeSharp.Benchmarks.dll 1024 1024 1024 2 0 | tail -1
  DOTNET_ROOT=$rt taskset -c 0-1 $rt/dotnet $D/lab5$b/MoeSharp.Benchmarks.dll 256 512 512 2 0 | tail -1
done; done 2>&1 | tee -a $OUT/lab5.txt
rm -rf /tmp/app-head && cp -r $D/app /tmp/app-head && cp $D/variants/head/MoeSharp.dll /tmp/app-head/
for r in 1 2; do for b in this head; do
  app=$D/app; [[ $b == head ]] && app=/tmp/app-head
  MOESHARP_THREADS=2 DOTNET_ROOT=$rt timeout 70 taskset -c 0-1 $rt/dotnet $app/moe.dll bench-cpu --what gemm --json --threads 2 \
    --repeats 5 --fma-lanes 16 2>/dev/null | python3 -c "
import json,sys
for l in sys.stdin:
    if l.startswith('{'):
        r=json.loads(l)
        if r['what']=='gemm': print('$b round $r', r['shape'][:34], r['product'][:6], round(r['gflops']), 'adjacent', round(r['fractionOfAdjacentPeak']*100), '%')" | tee -a $OUT/ab-gemm.txt
done; done
MOESHARP_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 timeout 60 taskset -c 0-1 python3 $D/cpu/torch_peer.py gemm --threads 2 2>&1 | tail -20 | tee $OUT/torch-gemm.txt
cd $OUT && tar czf /tmp/out-i.tgz . && rm -rf $OUT/* && mv /tmp/out-i.tgz $OUT/
