#!/usr/bin/env bash
# Stop 26, call G: bench-cpu's GEMM at 16 threads with its defaults (2 warm-ups, 5 runs) and with 20 warm-ups and 51
# runs, beside torch_peer.py gemm with the same counts and the back-to-back lab.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
n=$(nproc)
summ() { python3 -c "
import json,sys
for l in sys.stdin:
    if l.startswith('{'):
        r=json.loads(l)
        if r.get('what')=='gemm': print('  ', r['shape'][:36].ljust(36), r['product'][:6], round(r['gflops']), ('adjacent %d%%' % round(r['fractionOfAdjacentPeak']*100)) if 'fractionOfAdjacentPeak' in r else '')"; }
for cfg in "2 5" "20 51"; do set -- $cfg
  echo "== bench-cpu warmup $1 repeats $2"; MOESHARP_THREADS=$n timeout 100 bash $D/run.sh bench-cpu --what gemm --json --threads $n --warmup $1 --repeats $2 --fma-lanes 16 2>/dev/null | summ
  echo "== torch_peer gemm warmup $1 iters $2"; OMP_NUM_THREADS=$n timeout 100 python3 $D/cpu/torch_peer.py gemm --threads $n --warmup $1 --iters $2 | summ
done 2>&1 | tee $OUT/harness.txt
DOTNET_ROOT=$rt timeout 60 $rt/dotnet $D/corelab/MoeSharp.Benchmarks.dll all $n lone 2>&1 | tee -a $OUT/harness.txt
