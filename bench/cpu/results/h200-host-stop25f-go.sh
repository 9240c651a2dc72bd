#!/usr/bin/env bash
# Stop 25, call F: this (row-by-row packing, edge kernels, host kernels on the GEMM's team) vs pack (without the team)
# vs main, layer steps in interleaved rounds beside PyTorch; lone-product lab; GEMM tables in 2 rounds; exchange/run.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
lscpu | grep -E "Model name|MHz" > $OUT/machine.txt
echo "== lab5: lone products (median of 15 back-to-back; gap = busy wait in us before each timed run)" | tee $OUT/lab5.txt
for t in 2 16; do for g in 0 1000; do for b in old new; do
  echo "[$b threads $t gap $g]"; DOTNET_ROOT=$rt taskset -c 0-$((t-1)) $rt/dotnet $D/lab5$b/MoeSharp.Benchmarks.dll 256 512 512 $t $g | tail -2
done; done; done 2>&1 | tee -a $OUT/lab5.txt
for b in pack main; do rm -rf /tmp/app-$b && cp -r $D/app /tmp/app-$b && cp $D/variants/$b/MoeSharp.dll /tmp/app-$b/; done
for r in 1 2 3; do
  for cfg in "2048 512 2 12" "2048 512 16 12" "8192 1024 16 8"; do
    set -- $cfg; T=$1; Dm=$2; n=$3; S=$4
    for b in this pack main; do
      app=$D/app; [[ $b != this ]] && app=/tmp/app-$b
      m=$(mktemp)
      MOESHARP_THREADS=$n DOTNET_ROOT=$rt timeout 60 taskset -c 0-$((n-1)) $rt/dotnet $app/moe.dll train --steps $S --shared-hidden 0 \
        --log-every 100000 --tokens $T --dim $Dm --hidden $Dm --experts 16 --top-k 2 --metrics $m > /dev/null 2>&1
      python3 -c "
import json,statistics
s=[json.loads(l) for l in open('$m') if l.startswith('{')]
ms=[x['layer_ms'] for x in s]
print(json.dumps({'round': $r, 'tokens': $T, 'threads': $n, 'build': '$b', 'layerMs': ms, 'median': statistics.median(ms[1:]), 'lossBits': s[-1]['loss_bits']}))" >> $OUT/layer-rounds.jsonl
    done
    MOESHARP_THREADS=$n OMP_NUM_THREADS=$n MKL_NUM_THREADS=$n timeout 90 taskset -c 0-$((n-1)) python3 $D/cpu/torch_peer.py layer --threads $n --warmup 1 \
      --iters $((S-1)) --tokens $T --dim $Dm --hidden $Dm --experts 16 --top-k 2 | sed "s/^{/{\"round\": $r, \"threads\": $n, \"tokens\": $T, /" >> $OUT/peer-rounds.jsonl
  done
done
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
for (T, n) in ((2048, 2), (2048, 16), (8192, 16)):
  pm = statistics.median(v for (rr, t, tok), v in peer.items() if t == n and tok == T)
  for b in ("this", "pack", "main"):
    sel = [r for r in rows if r["build"] == b and r["threads"] == n and r["tokens"] == T]
    mine = statistics.median(r["median"] for r in sel)
    ratios = sorted(peer[(r['round'], n, T)] / r['median'] for r in sel)
    print(f"T{T} {n} thr {b:5}: median over rounds {mine:.1f} ms, peer {pm:.1f} ms, {pm / mine:.2f}x; per-round ratios {[round(x, 2) for x in ratios]}")
PY
SKIP=dispatch,exchange,run,layer GEMM_ROUNDS=2 BUDGET_S=170 STEP_TIMEOUT=60 timeout 180 bash $D/cpu/device-run.sh $D > $OUT/device-run-console.txt 2>&1
mkdir -p $OUT/exch && OUT=$OUT/exch timeout 130 bash $D/cpu/device-run-exchange.sh $D > $OUT/exch/console.txt 2>&1
grep -A3 "dispatch\|ms for" $OUT/exch/tables-cpu.md | head -30; cat $OUT/exch/run-2cores.txt
cut -c1-200 $OUT/tables-cpu.md | grep -v "^$" | tail -36
cd $OUT && tar czf /tmp/out-f.tgz . && rm -rf $OUT/* && mv /tmp/out-f.tgz $OUT/ && ls
