#!/usr/bin/env bash
# Stop 25, call H: more interleaved rounds of the 2-thread layer steps (final build beside PyTorch, cores 0-1).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
layer() { # round T D threads steps
  local r=$1 T=$2 Dm=$3 n=$4 S=$5
  m=$(mktemp)
  MOESHARP_THREADS=$n DOTNET_ROOT=$rt timeout 90 taskset -c 0-$((n-1)) $rt/dotnet $D/app/moe.dll train --steps $S --shared-hidden 0 \
    --log-every 100000 --tokens $T --dim $Dm --hidden $Dm --experts 16 --top-k 2 --metrics $m > /dev/null 2>&1
  python3 -c "
import json,statistics
s=[json.loads(l) for l in open('$m') if l.startswith('{')]
ms=[x['layer_ms'] for x in s]
print(json.dumps({'round': $r, 'tokens': $T, 'threads': $n, 'build': 'this', 'layerMs': ms, 'median': statistics.median(ms[1:]), 'lossBits': s[-1]['loss_bits']}))" >> $OUT/layer-rounds.jsonl
  MOESHARP_THREADS=$n OMP_NUM_THREADS=$n MKL_NUM_THREADS=$n timeout 120 taskset -c 0-$((n-1)) python3 $D/cpu/torch_peer.py layer --threads $n --warmup 1 \
    --iters $((S-1)) --tokens $T --dim $Dm --hidden $Dm --experts 16 --top-k 2 | sed "s/^{/{\"round\": $r, \"threads\": $n, \"tokens\": $T, /" >> $OUT/peer-rounds.jsonl
}
for r in 1 2 3 4 5 6; do layer $r 2048 512 2 12; done
for r in 1 2; do layer $r 8192 1024 2 6; done
python3 - $OUT <<'PY' | tee $OUT/layer-summary.txt
import json, sys, statistics
out = sys.argv[1]
peer = {}
for l in open(out + "/peer-rounds.jsonl"):
    j = json.loads(l); peer[(j["round"], j["threads"], j["tokens"])] = j["stepMs"]
rows = [json.loads(l) for l in open(out + "/layer-rounds.jsonl")]
for r in rows:
    pr = peer.get((r['round'], r['threads'], r['tokens']), float('nan'))
    print(f"T{r['tokens']} {r['threads']}thr round {r['round']}: {r['median']:.1f} ms, peer {pr:.1f} ms, {pr / r['median']:.2f}x, loss {r['lossBits']}")
for T in (2048, 8192):
    sel = [r for r in rows if r["tokens"] == T]
    mine = statistics.median(r["median"] for r in sel); pm = statistics.median(v for (rr, t, tok), v in peer.items() if tok == T)
    ratios = sorted(peer[(r['round'], 2, T)] / r['median'] for r in sel)
    print(f"T{T} 2 thr: median over rounds {mine:.1f} ms, peer {pm:.1f} ms, {pm / mine:.2f}x; per-round ratios {[round(x, 2) for x in ratios]}")
PY
cd $OUT && tar czf /tmp/out-h.tgz . && rm -rf $OUT/* && mv /tmp/out-h.tgz $OUT/
