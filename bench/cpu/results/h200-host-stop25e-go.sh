#!/usr/bin/env bash
# Stop 25, call E: packing row by row + edge kernels against main's library on the Xeon.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
cp -r $D/lab3 /tmp/lab3-new; cp -r $D/lab3 /tmp/lab3-old; cp $D/app/MoeSharp.dll /tmp/lab3-new/; cp $D/variants/main/MoeSharp.dll /tmp/lab3-old/
cp $D/app/MoeSharp.dll $D/lab2/
lscpu | grep -E "Model name|MHz" > $OUT/machine.txt
echo "== lab3: grouped products, 1 thread, core 0 (old = main, new = this)" | tee $OUT/lab3.txt
for r in 1 2; do
  for b in old new; do echo "[$b]"; DOTNET_ROOT=$rt taskset -c 0 $rt/dotnet /tmp/lab3-$b/MoeSharp.Benchmarks.dll 256 1 16 512 2; done
  echo "[mkl]"; OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python3 $D/cpu/mkl_grouped.py 256 1 16 512 1
done 2>&1 | tee -a $OUT/lab3.txt
for b in old new; do echo "[$b]"; DOTNET_ROOT=$rt taskset -c 0 $rt/dotnet /tmp/lab3-$b/MoeSharp.Benchmarks.dll 1024 1 4 1024 1; done 2>&1 | tee -a $OUT/lab3.txt
echo "[mkl]" | tee -a $OUT/lab3.txt; OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python3 $D/cpu/mkl_grouped.py 1024 1 4 1024 1 2>&1 | tee -a $OUT/lab3.txt
echo "== lab3 at 2 threads, cores 0-1" | tee -a $OUT/lab3.txt
for b in old new; do echo "[$b]"; DOTNET_ROOT=$rt MOESHARP_THREADS=2 taskset -c 0-1 $rt/dotnet /tmp/lab3-$b/MoeSharp.Benchmarks.dll 256 2 16 512 2; done 2>&1 | tee -a $OUT/lab3.txt
echo "[mkl]" | tee -a $OUT/lab3.txt; OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 taskset -c 0-1 python3 $D/cpu/mkl_grouped.py 256 2 16 512 2 2>&1 | tee -a $OUT/lab3.txt
echo "== lab2 kernels, cores 0 and 2 at once" | tee $OUT/lab2.txt
(DOTNET_ROOT=$rt taskset -c 0 timeout 150 $rt/dotnet $D/lab2/MoeSharp.Benchmarks.dll 1 > $OUT/lab2-core0.txt 2>&1) &
(DOTNET_ROOT=$rt taskset -c 2 timeout 150 $rt/dotnet $D/lab2/MoeSharp.Benchmarks.dll 1 > $OUT/lab2-core2.txt 2>&1) &
wait
cat $OUT/lab2-core0.txt $OUT/lab2-core2.txt | tee -a $OUT/lab2.txt
echo "== layer rounds"
rm -rf /tmp/app-main && cp -r $D/app /tmp/app-main && cp $D/variants/main/MoeSharp.dll /tmp/app-main/
for r in 1 2 3; do
  for n in 2 16; do
  for b in this main; do
    app=$D/app; [[ $b == main ]] && app=/tmp/app-main
    m=$(mktemp)
    MOESHARP_THREADS=$n DOTNET_ROOT=$rt taskset -c 0-$((n-1)) $rt/dotnet $app/moe.dll train --steps 12 --shared-hidden 0 \
      --log-every 100000 --tokens 2048 --dim 512 --hidden 512 --experts 16 --top-k 2 --metrics $m > /dev/null 2>&1
    python3 -c "
import json,statistics
s=[json.loads(l) for l in open('$m') if l.startswith('{')]
ms=[x['layer_ms'] for x in s]
print(json.dumps({'round': $r, 'threads': $n, 'build': '$b', 'layerMs': ms, 'median212': statistics.median(ms[1:]), 'lossBits': s[-1]['loss_bits']}))" >> $OUT/layer-rounds.jsonl
  done
  MOESHARP_THREADS=$n OMP_NUM_THREADS=$n MKL_NUM_THREADS=$n taskset -c 0-$((n-1)) python3 $D/cpu/torch_peer.py layer --threads $n --warmup 1 \
    --iters 11 --tokens 2048 --dim 512 --hidden 512 --experts 16 --top-k 2 | sed "s/^{/{\"round\": $r, \"threads\": $n, /" >> $OUT/peer-rounds.jsonl
  done
done
python3 - $OUT <<'PY' | tee $OUT/layer-summary.txt
import json, sys, statistics
out = sys.argv[1]
peer = {(json.loads(l)["round"], json.loads(l)["threads"]): json.loads(l)["stepMs"] for l in open(out + "/peer-rounds.jsonl")}
rows = [json.loads(l) for l in open(out + "/layer-rounds.jsonl")]
for r in rows:
    pr = peer[(r['round'], r['threads'])]
    print(f"layer T2048 {r['threads']}thr round {r['round']} {r['build']}: {r['median212']:.1f} ms, peer {pr:.1f} ms, {pr / r['median212']:.2f}x, loss {r['lossBits']}")
for n in (2, 16):
  for b in ("this", "main"):
    mine = statistics.median(r["median212"] for r in rows if r["build"] == b and r["threads"] == n)
    pm = statistics.median(v for (rr, t), v in peer.items() if t == n)
    print(f"{n} thr {b}: median over rounds {mine:.1f} ms, peer {pm:.1f} ms, {pm / mine:.2f}x")
PY
SKIP=dispatch,exchange,run,layer GEMM_ROUNDS=2 BUDGET_S=170 STEP_TIMEOUT=60 bash $D/cpu/device-run.sh $D > $OUT/device-run-console.txt 2>&1
cut -c1-240 $OUT/tables-cpu.md | grep -v "^$" | tail -40
cd $OUT && tar czf /tmp/out-e.tgz . && rm -rf $OUT/* && mv /tmp/out-e.tgz $OUT/ && ls
