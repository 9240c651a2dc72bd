#!/usr/bin/env bash
# Stop 26, call C: tiered JIT on (the runtime's default) vs off (DOTNET_TieredCompilation=0) for the moe CLI, and the
# spin / KC variants with it off; layer steps in interleaved rounds beside PyTorch's, 2-thread GEMM rounds, moe run.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
{ date -u; lscpu | grep -E 'Model|^CPU\(s\)|L2|L3'; } | tee $OUT/machine.txt
for b in main spin2ms kc192; do rm -rf /tmp/app-$b; cp -r $D/app /tmp/app-$b; cp $D/variants/$b/MoeSharp.dll /tmp/app-$b/; done
layer() { # round T D threads steps cores name build tc
  local r=$1 T=$2 Dm=$3 n=$4 S=$5 cores=$6 name=$7 b=$8 tc=$9 m=$(mktemp)
  DOTNET_TieredCompilation=$tc MOESHARP_THREADS=$n DOTNET_ROOT=$rt timeout 120 taskset -c $cores $rt/dotnet /tmp/app-$b/moe.dll train --steps $S --shared-hidden 0 \
    --log-every 100000 --tokens $T --dim $Dm --hidden $Dm --experts 16 --top-k 2 --metrics $m > /dev/null 2>&1
  python3 -c "
import json,statistics
s=[json.loads(l) for l in open('$m') if l.startswith('{')]
ms=[x['layer_ms'] for x in s]
print(json.dumps({'round': $r, 'tokens': $T, 'threads': $n, 'build': '$name', 'layerMs': ms, 'median': statistics.median(ms[1:]), 'lossBits': s[-1]['loss_bits']}))" >> $OUT/layer-rounds.jsonl
}
peer() { # round T D threads iters cores
  OMP_NUM_THREADS=$4 MKL_NUM_THREADS=$4 timeout 150 taskset -c $6 python3 $D/cpu/torch_peer.py layer --threads $4 --warmup 1 \
    --iters $5 --tokens $2 --dim $3 --hidden $3 --experts 16 --top-k 2 | sed "s/^{/{\"round\": $1, \"threads\": $4, \"tokens\": $2, /" >> $OUT/peer-rounds.jsonl
}
all=0-$(( $(nproc) - 1 ))
for r in 1 2 3; do
  layer $r 2048 512 2 12 0-1 tiered main 1; layer $r 2048 512 2 12 0-1 tc0 main 0
  layer $r 2048 512 2 12 0-1 tc0-spin2ms spin2ms 0; layer $r 2048 512 2 12 0-1 tc0-kc192 kc192 0
  peer $r 2048 512 2 11 0-1
  if [[ $r -le 2 ]]; then
    layer $r 2048 512 16 12 $all tiered main 1; layer $r 2048 512 16 12 $all tc0 main 0; peer $r 2048 512 16 11 $all
    layer $r 8192 1024 16 8 $all tiered main 1; layer $r 8192 1024 16 8 $all tc0 main 0; peer $r 8192 1024 16 7 $all
  fi
done
layer 1 8192 1024 2 6 0-1 tiered main 1; layer 1 8192 1024 2 6 0-1 tc0 main 0; peer 1 8192 1024 2 5 0-1
python3 - $OUT <<'PY' | tee $OUT/layer-summary.txt
import json, sys, statistics
out = sys.argv[1]
peer = {(j["round"], j["threads"], j["tokens"]): j["stepMs"] for j in map(json.loads, open(out + "/peer-rounds.jsonl"))}
rows = [json.loads(l) for l in open(out + "/layer-rounds.jsonl")]
for (T, n) in ((2048, 2), (2048, 16), (8192, 16), (8192, 2)):
    for b in ("tiered", "tc0", "tc0-spin2ms", "tc0-kc192"):
        sel = [r for r in rows if r["build"] == b and r["threads"] == n and r["tokens"] == T]
        if not sel: continue
        mine = statistics.median(r["median"] for r in sel); pm = statistics.median(peer[(r["round"], n, T)] for r in sel)
        rr = [round(peer[(r["round"], n, T)] / r["median"], 2) for r in sel]
        print(f"T{T} {n:2} thr {b:12}: rounds {[round(r['median'], 1) for r in sel]} median {mine:.1f} ms, peer {pm:.1f}, {pm / mine:.2f}x, per round {rr}, loss {sel[-1]['lossBits']}")
        for r in sel: print("    steps", [round(x) for x in r["layerMs"]])
PY
echo "== moe run, 2 pinned cores" | tee $OUT/run.txt
for i in 1 2 3; do for tc in 1 0; do echo -n "tc=$tc: "; DOTNET_TieredCompilation=$tc MOESHARP_THREADS=2 timeout 60 taskset -c 0-1 bash $D/run.sh run 2>&1 | grep -o '[0-9.]* ms for dispatch' | tr '\n' ' '; echo; done; done | tee -a $OUT/run.txt
for tc in 1 0; do
  echo "== GEMM 2 threads, cores 0-1, DOTNET_TieredCompilation=$tc"
  DOTNET_TieredCompilation=$tc timeout 150 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --fma-lanes 16 \
    --timeout 80 --gemm-rounds 2 --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm2-tc$tc.jsonl --log $OUT/gemm2-tc$tc-log.txt > $OUT/gemm2-tc$tc.md 2>&1
  grep -E '^\|' $OUT/gemm2-tc$tc.md | grep -v -- '---' | cut -c1-200
done
echo "== GEMM 16 threads, DOTNET_TieredCompilation=0"
DOTNET_TieredCompilation=0 timeout 100 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 80 --gemm-rounds 1 --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm16-tc0.jsonl --log $OUT/gemm16-tc0-log.txt > $OUT/gemm16-tc0.md 2>&1
grep -E '^\|' $OUT/gemm16-tc0.md | grep -v -- '---' | cut -c1-200
cd $OUT && tar czf /tmp/out-c.tgz . && rm -rf $OUT/* && mv /tmp/out-c.tgz $OUT/ && ls
