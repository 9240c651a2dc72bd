# Stop 24, call A: GEMM kernel KC 384 + prefetch, one-thread product paths, adjacent probes.
# 1) T 2048 layer step, builds this / main / this+tc0 interleaved in 3 rounds with PyTorch's step (2 threads pinned, and 16).
# 2) compare.py CPU tables (layer, GEMM) at 2 and 16 threads.
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
cat $OUT/ab-layer.md | tail -12; cat $OUT/peer-rounds.jsonl
SKIP=dispatch,exchange,run BUDGET_S=200 STEP_TIMEOUT=60 bash $D/cpu/device-run.sh $D > $OUT/device-run-console.txt 2>&1
grep -A 40 "Layer step\|GEMM" $OUT/tables-cpu.md | cut -c1-260 | head -90
cd $OUT && tar czf /tmp/out-a.tgz . && rm -rf $OUT/* && mv /tmp/out-a.tgz $OUT/ && ls
