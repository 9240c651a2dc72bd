# Issue 12's disputed cell (T 2048, 2 threads) in interleaved rounds: moe train's layer (tiered compilation on and
# off) beside PyTorch's layer step, three rounds, all pinned to cores 0-1.
set -u
cd "$(dirname "$0")/.."
D=.device-final
export OUT
for r in 1 2 3; do
  ROUNDS=1 SHAPES=2048x512 THREADS=2 bash $D/cpu/device-ab-layer.sh $D > /dev/null 2>&1
  MOESHARP_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 taskset -c 0-1 python3 $D/cpu/torch_peer.py layer --threads 2 \
    --warmup 1 --iters 5 --tokens 2048 --dim 512 --hidden 512 --experts 16 --top-k 2 >> $OUT/peer-rounds.jsonl 2>>$OUT/peer-err.txt
done
cat $OUT/ab-layer.md 2>/dev/null | tail -20; cat $OUT/peer-rounds.jsonl
