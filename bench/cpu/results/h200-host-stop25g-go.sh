#!/usr/bin/env bash
# Stop 25, call G: the final build (row-by-row packing, edge kernels, team for every host kernel, claims one at a time
# when more than two tasks share panels) against main's library; layer rounds beside PyTorch; the full CPU tables.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
echo "== lab5: lone 256x512x512 products, median of 15 back-to-back (old = main)" | tee $OUT/lab5.txt
for t in 2 16; do for b in old new; do
  echo "[$b threads $t]"; DOTNET_ROOT=$rt taskset -c 0-$((t-1)) $rt/dotnet $D/lab5$b/MoeSharp.Benchmarks.dll 256 512 512 $t 0 | tail -2
done; done 2>&1 | tee -a $OUT/lab5.txt
echo "== bench-cpu gemm, 2 threads, warm-up 30 (device-run below: 2)" | tee $OUT/warmup.txt
for w in 30; do
  MOESHARP_THREADS=2 DOTNET_ROOT=$rt timeout 80 taskset -c 0-1 $rt/dotnet $D/app/moe.dll bench-cpu --what gemm --json --threads 2 \
    --repeats 5 --warmup $w --fma-lanes 16 2>/dev/null | python3 -c "
import json,sys
for l in sys.stdin:
    if l.startswith('{'):
        r=json.loads(l)
        if r['what']=='gemm': print('warmup $w', r['shape'][:34], r['product'][:6], round(r['gflops']), 'adjacent', round(r['fractionOfAdjacentPeak']*100), '%')"
done 2>&1 | tee -a $OUT/warmup.txt
rm -rf /tmp/app-main && cp -r $D/app /tmp/app-main && cp $D/variants/main/MoeSharp.dll /tmp/app-main/
layer() { # round T D threads steps
  local r=$1 T=$2 Dm=$3 n=$4 S=$5
  for b in this main; do
    app=$D/app; [[ $b != this ]] && app=/tmp/app-$b
    m=$(mktemp)
    MOESHARP_THREADS=$n DOTNET_ROOT=$rt timeout 90 taskset -c 0-$((n-1)) $rt/dotnet $app/moe.dll train --steps $S --shared-hidden 0 \
      --log-every 100000 --tokens $T --dim $Dm --hidden $Dm --experts 16 --top-k 2 --metrics $m > /dev/null 2>&1
    python3 -c "
import json,statistics
s=[json.loads(l) for l in open('$m') if l.startswith('{')]
ms=[x['layer_ms'] for x in s]
print(json.dumps({'round': $r, 'tokens': $T, 'threads': $n, 'build': '$b', 'layerMs': ms, 'median': statistics.median(ms[1:]), 'lossBits': s[-1]['loss_bits']}))" >> $OUT/layer-rounds.jsonl
  done
  MOESHARP_THREADS=$n OMP_NUM_THREADS=$n MKL_NUM_THREADS=$n timeout 120 taskset -c 0-$((n-1)) python3 $D/cpu/torch_peer.py layer --threads $n --warmup 1 \
    --iters $((S-1)) --tokens $T --dim $Dm --hidden $Dm --experts 16 --top-k 2 | sed "s/^{/{\"round\": $r, \"threads\": $n, \"tokens\": $T, /" >> $OUT/peer-rounds.jsonl
}
for r in 1 2 3; do layer $r 2048 512 2 12; layer $r 2048 512 16 12; layer $r 8192 1024 16 8; done
layer 1 8192 1024 2 4
python3 - $OUT <<'PY' | tee $OUT/layer-summary.txt
import json, sys, statistics
out = sys.argv[1]
peer = {}
for l in open(out + "/peer-rounds.jsonl"):
    j = json.loads(l); peer[(j["round"], j["threads"], j["tokens"])] = j["stepMs"]
rows = [json.loads(l) for l in open(out + "/layer-rounds.jsonl")]
for r in rows:
    pr = peer.get((r['round'], r['threads'], r['tokens']), float('nan'))
    print(f"T{r['tokens']} {r['threads']}thr round {r['round']} {r['build']:5}: {r['median']:.1f} ms, peer {pr:.1f} ms, {pr / r['median']:.2f}x, loss {r['lossBits']}")
for (T, n) in ((2048, 2), (2048, 16), (8192, 16), (8192, 2)):
  pm = statistics.median(v for (rr, t, tok), v in peer.items() if t == n and tok == T)
  for b in ("this", "main"):
    sel = [r for r in rows if r["build"] == b and r["threads"] == n and r["tokens"] == T]
    mine = statistics.median(r["median"] for r in sel)
    ratios = sorted(peer[(r['round'], n, T)] / r['median'] for r in sel)
    print(f"T{T} {n} thr {b:5}: median over rounds {mine:.1f} ms, peer {pm:.1f} ms, {pm / mine:.2f}x; per-round ratios {[round(x, 2) for x in ratios]}")
PY
SKIP=layer,large-layer GEMM_ROUNDS=2 BUDGET_S=250 STEP_TIMEOUT=60 timeout 260 bash $D/cpu/device-run.sh $D > $OUT/device-run-console.txt 2>&1
cut -c1-200 $OUT/tables-cpu.md | grep -v "^$" | grep -v "^|---" | tail -75
cd $OUT && tar czf /tmp/out-g.tgz . && rm -rf $OUT/* && mv /tmp/out-g.tgz $OUT/ && ls
