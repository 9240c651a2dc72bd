# Stop 24, call B (final build): T 2048 layer step in 3 interleaved rounds beside PyTorch (2 threads pinned, and 16),
# then every bench/cpu table (dispatch + combine, exchange, moe run, layer, GEMM) at 2 and 16 threads.
set -u
D=.device
export OUT
for r in 1 2 3; do
  ROUNDS=1 SHAPES=2048x512 THREADS="2 16" bash $D/cpu/device-ab-layer.sh $D > /dev/null 2>&1
  for n in 2 16; do
    MOESHARP_THREADS=$n OMP_NUM_THREADS=$n MKL_NUM_THREADS=$n taskset -c 0-$((n-1)) python3 $D/cpu/torch_peer.py layer --threads $n \
      --warmup 1 --iters 5 --tokens 2048 --dim 512 --hidden 512 --experts 16 --top-k 2 | sed "s/^{/{\"round\": $r, /" >> $OUT/peer-rounds.jsonl 2>>$OUT/peer-err.txt
  done
done
cat $OUT/ab-layer.md | tail -8; python3 -c "
import json
for l in open('$OUT/peer-rounds.jsonl'): r=json.loads(l); print('peer round', r['round'], r['threads'], 'threads', round(r['stepMs'],1), 'ms')"
BUDGET_S=330 STEP_TIMEOUT=60 bash $D/cpu/device-run.sh $D > $OUT/device-run-console.txt 2>&1
cut -c1-220 $OUT/tables-cpu.md | grep -v "^$" | head -120
cd $OUT && tar czf /tmp/out-b.tgz . && rm -rf $OUT/* && mv /tmp/out-b.tgz $OUT/ && ls
