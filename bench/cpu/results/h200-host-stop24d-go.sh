# Stop 24, call D (final build): the T 2048 layer step at 2 threads (cores 0-1), this build and main's library, 12 steps
# each (median of steps 2-12), then PyTorch's step (11 after 1 warm-up), 3 rounds; the GEMM tables at 2 and 16 threads
# in 2 alternating rounds of each side.
set -u
D=.device
export OUT
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
rm -rf /tmp/app-main && cp -r $D/app /tmp/app-main && cp $D/variants/main/MoeSharp.dll /tmp/app-main/
for r in 1 2 3; do
  for b in this main; do
    app=$D/app; [[ $b == main ]] && app=/tmp/app-main
    m=$(mktemp)
    MOESHARP_THREADS=2 DOTNET_ROOT=$rt taskset -c 0-1 $rt/dotnet $app/moe.dll train --steps 12 --shared-hidden 0 \
      --log-every 100000 --tokens 2048 --dim 512 --hidden 512 --experts 16 --top-k 2 --metrics $m > /dev/null 2>&1
    python3 -c "
import json,statistics
s=[json.loads(l) for l in open('$m') if l.startswith('{')]
ms=[x['layer_ms'] for x in s]
print(json.dumps({'round': $r, 'build': '$b', 'layerMs': ms, 'median212': statistics.median(ms[1:]), 'lossBits': s[-1]['loss_bits']}))" >> $OUT/layer-rounds.jsonl
  done
  MOESHARP_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 taskset -c 0-1 python3 $D/cpu/torch_peer.py layer --threads 2 --warmup 1 \
    --iters 11 --tokens 2048 --dim 512 --hidden 512 --experts 16 --top-k 2 | sed "s/^{/{\"round\": $r, /" >> $OUT/peer-rounds.jsonl
done
python3 - $OUT <<'PY'
import json, sys, statistics
out = sys.argv[1]
peer = {json.loads(l)["round"]: json.loads(l)["stepMs"] for l in open(out + "/peer-rounds.jsonl")}
rows = [json.loads(l) for l in open(out + "/layer-rounds.jsonl")]
for r in rows:
    print(f"layer T2048 2thr round {r['round']} {r['build']}: {r['median212']:.1f} ms (steps {[round(x) for x in r['layerMs']]}), "
          f"peer {peer[r['round']]:.1f} ms, {peer[r['round']] / r['median212']:.2f}x, loss {r['lossBits']}")
for b in ("this", "main"):
    mine = statistics.median(r["median212"] for r in rows if r["build"] == b)
    print(f"{b}: median over rounds {mine:.1f} ms, peer {statistics.median(peer.values()):.1f} ms, "
          f"{statistics.median(peer.values()) / mine:.2f}x; per-round ratios median "
          f"{statistics.median(peer[r['round']] / r['median212'] for r in rows if r['build'] == b):.2f}x")
PY
SKIP=dispatch,exchange,run,layer GEMM_ROUNDS=2 BUDGET_S=150 STEP_TIMEOUT=60 bash $D/cpu/device-run.sh $D > $OUT/device-run-console.txt 2>&1
cut -c1-240 $OUT/tables-cpu.md | grep -v "^$" | head -44
cd $OUT && tar czf /tmp/out-d.tgz . && rm -rf $OUT/* && mv /tmp/out-d.tgz $OUT/ && ls
