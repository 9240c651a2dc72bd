# Stop 24, call C (final build): quick-JIT-for-loops on (1) and off (0, the build's runtimeconfig) interleaved with
# PyTorch's step: the T 2048 layer at 2 threads (cores 0-1), 12 steps (median of steps 2-12) against 11 peer steps after 1 warm-up, 3 rounds; moe run on cores 0-1 both ways; then the GEMM
# tables at 2 and 16 threads in 3 alternating rounds of each side (compare.py --gemm-rounds 3).
set -u
D=.device
export OUT
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
for r in 1 2 3; do
  for q in 1 0; do
    m=$(mktemp)
    MOESHARP_THREADS=2 DOTNET_TC_QuickJitForLoops=$q DOTNET_ROOT=$rt taskset -c 0-1 $rt/dotnet $D/app/moe.dll train --steps 12 \
      --shared-hidden 0 --log-every 100000 --tokens 2048 --dim 512 --hidden 512 --experts 16 --top-k 2 --metrics $m > /dev/null 2>&1
    python3 -c "
import json,statistics
s=[json.loads(l) for l in open('$m') if l.startswith('{')]
ms=[x['layer_ms'] for x in s]
print(json.dumps({'round': $r, 'qjfl': $q, 'layerMs': ms, 'median26': statistics.median(ms[1:]), 'lossBits': s[-1]['loss_bits']}))" >> $OUT/layer-qjfl.jsonl
    MOESHARP_THREADS=2 DOTNET_TC_QuickJitForLoops=$q DOTNET_ROOT=$rt taskset -c 0-1 $rt/dotnet $D/app/moe.dll run 2>&1 \
      | grep -o "[0-9.]* ms for dispatch" | tr '\n' ' ' | sed "s/^/run round $r qjfl $q: /; s/$/\n/" >> $OUT/run-qjfl.txt
  done
  MOESHARP_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 taskset -c 0-1 python3 $D/cpu/torch_peer.py layer --threads 2 --warmup 1 \
    --iters 11 --tokens 2048 --dim 512 --hidden 512 --experts 16 --top-k 2 | sed "s/^{/{\"round\": $r, /" >> $OUT/peer-rounds.jsonl
done
python3 - $OUT <<'PY'
import json, sys
out = sys.argv[1]
peer = {json.loads(l)["round"]: json.loads(l)["stepMs"] for l in open(out + "/peer-rounds.jsonl")}
for l in open(out + "/layer-qjfl.jsonl"):
    r = json.loads(l)
    print(f"layer T2048 2thr round {r['round']} qjfl {r['qjfl']}: {r['median26']:.1f} ms (steps {[round(x) for x in r['layerMs']]}), "
          f"peer {peer[r['round']]:.1f} ms, {peer[r['round']] / r['median26']:.2f}x, loss {r['lossBits']}")
PY
cat $OUT/run-qjfl.txt
SKIP=dispatch,exchange,run,layer GEMM_ROUNDS=3 BUDGET_S=200 STEP_TIMEOUT=60 bash $D/cpu/device-run.sh $D > $OUT/device-run-console.txt 2>&1
cut -c1-240 $OUT/tables-cpu.md | grep -v "^$" | head -60
cd $OUT && tar czf /tmp/out-c.tgz . && rm -rf $OUT/* && mv /tmp/out-c.tgz $OUT/ && ls
