#!/usr/bin/env bash
# Stop 26, call D: the CLI with QuickJit off (this build) against the same build with QuickJit on (the runtime's
# default, as main ran): layer steps in interleaved rounds beside PyTorch's at 2 and 16 threads on both shapes; then
# the CPU tables of this build (GEMM, dispatch + combine, exchange, moe run) at 2 and 16 threads.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
{ date -u; lscpu | grep -E 'Model|^CPU\(s\)|L2|L3'; } | tee $OUT/machine.txt
rm -rf /tmp/app-tiered && cp -r $D/app /tmp/app-tiered && sed -i 's/"System.Runtime.TieredCompilation.QuickJit": false/"System.Runtime.TieredCompilation.QuickJit": true/' /tmp/app-tiered/moe.runtimeconfig.json
grep -h QuickJit $D/app/moe.runtimeconfig.json /tmp/app-tiered/moe.runtimeconfig.json
layer() { # round T D threads steps cores build
  local r=$1 T=$2 Dm=$3 n=$4 S=$5 cores=$6 b=$7 m=$(mktemp) app=$D/app
  [[ $b == tiered ]] && app=/tmp/app-tiered
  MOESHARP_THREADS=$n DOTNET_ROOT=$rt timeout 120 taskset -c $cores $rt/dotnet $app/moe.dll train --steps $S --shared-hidden 0 \
    --log-every 100000 --tokens $T --dim $Dm --hidden $Dm --experts 16 --top-k 2 --metrics $m > /dev/null 2>&1
  python3 -c "
import json,statistics
s=[json.loads(l) for l in open('$m') if l.startswith('{')]
ms=[x['layer_ms'] for x in s]
print(json.dumps({'round': $r, 'tokens': $T, 'threads': $n, 'build': '$b', 'layerMs': ms, 'median': statistics.median(ms[1:]), 'lossBits': s[-1]['loss_bits']}))" >> $OUT/layer-rounds.jsonl
}
peer() { # round T D threads iters cores
  OMP_NUM_THREADS=$4 MKL_NUM_THREADS=$4 timeout 150 taskset -c $6 python3 $D/cpu/torch_peer.py layer --threads $4 --warmup 1 \
    --iters $5 --tokens $2 --dim $3 --hidden $3 --experts 16 --top-k 2 | sed "s/^{/{\"round\": $1, \"threads\": $4, \"tokens\": $2, /" >> $OUT/peer-rounds.jsonl
}
all=0-$(( $(nproc) - 1 ))
for r in 1 2 3; do
  layer $r 2048 512 2 12 0-1 tiered; layer $r 2048 512 2 12 0-1 this; peer $r 2048 512 2 11 0-1
  if [[ $r -le 2 ]]; then
    layer $r 2048 512 16 12 $all tiered; layer $r 2048 512 16 12 $all this; peer $r 2048 512 16 11 $all
    layer $r 8192 1024 16 8 $all tiered; layer $r 8192 1024 16 8 $all this; peer $r 8192 1024 16 7 $all
    layer $r 8192 1024 2 6 0-1 tiered; layer $r 8192 1024 2 6 0-1 this; peer $r 8192 1024 2 5 0-1
  fi
done
python3 - $OUT <<'PY' | tee $OUT/layer-summary.txt
import json, sys, statistics
out = sys.argv[1]
peer = {(j["round"], j["threads"], j["tokens"]): j["stepMs"] for j in map(json.loads, open(out + "/peer-rounds.jsonl"))}
rows = [json.loads(l) for l in open(out + "/layer-rounds.jsonl")]
for (T, n) in ((2048, 2), (2048, 16), (8192, 16), (8192, 2)):
    for b in ("tiered", "this"):
        sel = [r for r in rows if r["build"] == b and r["threads"] == n and r["tokens"] == T]
        if not sel: continue
        mine = statistics.median(r["median"] for r in sel); pm = statistics.median(peer[(r["round"], n, T)] for r in sel)
        rr = [round(peer[(r["round"], n, T)] / r["median"], 2) for r in sel]
        print(f"T{T} {n:2} thr {b:6}: rounds {[round(r['median'], 1) for r in sel]} median {mine:.1f} ms, peer {pm:.1f} ({[round(peer[(r['round'], n, T)], 1) for r in sel]}), {pm / mine:.2f}x, per round {rr}, loss {sel[-1]['lossBits']}")
        for r in sel: print("    steps", [round(x) for x in r["layerMs"]])
PY
echo "== moe run, 2 pinned cores (tiered / this)" | tee $OUT/run.txt
for i in 1 2 3; do for b in tiered this; do app=$D/app; [[ $b == tiered ]] && app=/tmp/app-tiered; echo -n "$b: "; MOESHARP_THREADS=2 DOTNET_ROOT=$rt timeout 60 taskset -c 0-1 $rt/dotnet $app/moe.dll run 2>&1 | grep -o '[0-9.]* ms for dispatch' | tr '\n' ' '; echo; done; done | tee -a $OUT/run.txt
SKIP=layer,large-layer GEMM_ROUNDS=1 BUDGET_S=250 STEP_TIMEOUT=60 timeout 260 bash $D/cpu/device-run.sh $D > $OUT/device-run-console.txt 2>&1
grep -E '^\|' $OUT/tables-cpu.md | grep -v -- '---' | cut -c1-200
cd $OUT && tar czf /tmp/out-d.tgz . && rm -rf $OUT/* && mv /tmp/out-d.tgz $OUT/ && ls
