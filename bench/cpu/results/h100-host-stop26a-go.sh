#!/usr/bin/env bash
# Stop 26, call A: which cores of this host give what (per-core probe, kernel, grouped 1-thread, MKL), then the
# 2-thread GEMM, layer T2048 and dispatch+combine on cores 0-1 and on the two best cores, both peers on the same cores.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
{ date -u; lscpu; nproc; free -g; for c in 0 1 2 3; do echo "cpu$c siblings $(cat /sys/devices/system/cpu/cpu$c/topology/thread_siblings_list 2>/dev/null) core_id $(cat /sys/devices/system/cpu/cpu$c/topology/core_id 2>/dev/null)"; done
  echo "interrupts per cpu:"; awk 'NR==1{n=NF; next} {for(i=2;i<=n+1;i++) if ($i ~ /^[0-9]+$/) s[i-2]+=$i} END {for(i=0;i<n;i++) printf "cpu%d %d\n", i, s[i]}' /proc/interrupts
  python3 -c 'import torch; print("torch", torch.__version__)'; } > $OUT/machine.txt 2>&1
grep -E 'Model name|^CPU\(s\)|Thread|L1d|L2|L3|MHz' $OUT/machine.txt
echo "== corelab per core (probe, kernel on L2 data, grouped 16x256x512x512 one thread)" | tee $OUT/corelab.txt
for c in $(seq 0 $(( $(nproc) - 1 ))); do DOTNET_ROOT=$rt timeout 30 taskset -c $c $rt/dotnet $D/corelab/MoeSharp.Benchmarks.dll $c; done 2>&1 | tee -a $OUT/corelab.txt
echo "== MKL per core (same grouped products, loop of torch.matmul)" | tee $OUT/mkl-core.txt
for c in $(seq 0 $(( $(nproc) - 1 ))); do echo -n "core $c: "; OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 timeout 30 taskset -c $c python3 $D/cpu/mkl_grouped.py 256 1 16 512 1; done 2>&1 | tee -a $OUT/mkl-core.txt
best=$(python3 - $OUT/corelab.txt <<'PY'
import re, sys
rows = []
for l in open(sys.argv[1]):
    m = re.match(r"core (\d+): .*grouped 1thr ABt (\d+) .*AB (\d+) .*AtB (\d+)", l)
    if m: rows.append((int(m[2]) + int(m[3]) + int(m[4]), int(m[1])))
rows.sort(reverse=True)
print(",".join(str(c) for _, c in rows[:2]))
PY
)
echo "best pair by grouped one-thread rate: $best" | tee -a $OUT/corelab.txt
for cores in 0-1 $best; do
  tag=${cores//[,-]/_}
  echo "== cores $cores: GEMM 2 threads (2 alternating rounds), dispatch + combine"
  timeout 200 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --cores $cores --threads 2 --fma-lanes 16 \
    --tokens 8192 --dim 2048 --repeats 5 --timeout 80 --gemm-rounds 2 --skip exchange,layer,run,large-layer \
    --jsonl $OUT/results-$tag.jsonl --log $OUT/log-$tag.txt > $OUT/tables-$tag.md 2>&1
  grep -E '^\|' $OUT/tables-$tag.md | grep -v -- '---' | cut -c1-230
done
layer() { # round cores
  local r=$1 cores=$2 m=$(mktemp)
  MOESHARP_THREADS=2 DOTNET_ROOT=$rt timeout 90 taskset -c $cores $rt/dotnet $D/app/moe.dll train --steps 12 --shared-hidden 0 \
    --log-every 100000 --tokens 2048 --dim 512 --hidden 512 --experts 16 --top-k 2 --metrics $m > /dev/null 2>&1
  python3 -c "
import json,statistics
s=[json.loads(l) for l in open('$m') if l.startswith('{')]
ms=[x['layer_ms'] for x in s]
print(json.dumps({'round': $r, 'cores': '$cores', 'layerMs': ms, 'median': statistics.median(ms[1:]), 'lossBits': s[-1]['loss_bits']}))" >> $OUT/layer-rounds.jsonl
  OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 timeout 120 taskset -c $cores python3 $D/cpu/torch_peer.py layer --threads 2 --warmup 1 \
    --iters 11 --tokens 2048 --dim 512 --hidden 512 --experts 16 --top-k 2 | sed "s/^{/{\"round\": $r, \"cores\": \"$cores\", /" >> $OUT/peer-rounds.jsonl
}
for r in 1 2 3; do layer $r 0-1; layer $r $best; done
python3 - $OUT <<'PY' | tee $OUT/layer-summary.txt
import json, sys, statistics
out = sys.argv[1]
peer = {(j["round"], j["cores"]): j["stepMs"] for j in map(json.loads, open(out + "/peer-rounds.jsonl"))}
rows = [json.loads(l) for l in open(out + "/layer-rounds.jsonl")]
for r in rows:
    p = peer.get((r["round"], r["cores"]), float("nan"))
    print(f"T2048 2thr cores {r['cores']} round {r['round']}: {r['median']:.1f} ms, peer {p:.1f} ms, {p / r['median']:.2f}x, loss {r['lossBits']}")
for cores in sorted({r["cores"] for r in rows}):
    sel = [r for r in rows if r["cores"] == cores]
    mine = statistics.median(r["median"] for r in sel); pm = statistics.median(peer[(r["round"], cores)] for r in sel)
    print(f"cores {cores}: median over rounds {mine:.1f} ms, peer {pm:.1f} ms, {pm / mine:.2f}x")
PY
cd $OUT && tar czf /tmp/out-a.tgz . && rm -rf $OUT/* && mv /tmp/out-a.tgz $OUT/ && ls
