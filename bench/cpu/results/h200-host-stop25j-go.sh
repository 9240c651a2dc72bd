#!/usr/bin/env bash
# Stop 25, call J: why bench-cpu's lone 256x512x512 rows at 16 threads read below LoneProductLab's: bench-cpu with its
# defaults, with more warm-up and repeats, and without tiered compilation; LoneProductLab beside them.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
run() { # label env... -- args
  local label=$1; shift
  env "$@" MOESHARP_THREADS=16 DOTNET_ROOT=$rt timeout 70 $rt/dotnet $D/app/moe.dll bench-cpu --what gemm --json --threads 16 \
    --fma-lanes 16 $BARGS 2>/dev/null | python3 -c "
import json,sys
for l in sys.stdin:
    if l.startswith('{'):
        r=json.loads(l)
        if r['what']=='gemm' and 'expert' in r['shape']: print('$label', r['shape'][:34], r['product'][:6], round(r['gflops']), 'adjacent', round(r['fractionOfAdjacentPeak']*100), '%')" | tee -a $OUT/lone16.txt
}
BARGS="--repeats 5 --warmup 2" run default DOTNET_TieredCompilation=1
BARGS="--repeats 15 --warmup 10" run w10r15 DOTNET_TieredCompilation=1
BARGS="--repeats 5 --warmup 2" run tc0 DOTNET_TieredCompilation=0
echo "[lab5 16 threads]" | tee -a $OUT/lone16.txt
DOTNET_ROOT=$rt $rt/dotnet $D/lab5slab/MoeSharp.Benchmarks.dll 256 512 512 16 0 | tee -a $OUT/lone16.txt
cd $OUT && tar czf /tmp/out-j.tgz . && rm -rf $OUT/* && mv /tmp/out-j.tgz $OUT/
