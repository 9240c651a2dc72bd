# Stop 23's final call: the merged build's GPU layer step beside the peer (+ moe train, golden files, GPU tests),
# then issue 12's CPU tables (layer steps, GEMM with the measured FMA peak) beside PyTorch and the layer profiles.
set -u
cd "$(dirname "$0")/.."
D=.device-final
(cd $D && tar xJf gpu-tests.tar.xz)
export OUT
LAYER_TRAIN=1 LAYER_CHECK=1 GOLDEN=golden timeout 200 bash bench/gpu/layer-bench.sh $D > $OUT/layer-bench.txt 2>&1
grep -E "^==|products|step time|verify-golden|gpu tests" $OUT/layer-bench.txt | cut -c1-400
mkdir -p $OUT/cpu
(OUT=$OUT/cpu SKIP=dispatch,exchange,run BUDGET_S=${BUDGET_S:-170} STEP_TIMEOUT=60 bash $D/cpu/device-run.sh $D > $OUT/cpu/stdout.txt 2>&1)
for shape in "2048 512" "8192 1024"; do
  set -- $shape
  MOESHARP_THREADS=2 timeout 30 taskset -c 0,1 bash "$D/run.sh" train --shared-hidden 0 --steps 4 --tokens "$1" \
    --dim "$2" --hidden "$2" --experts 16 --top-k 2 --profile > "$OUT/cpu/profile-layer-T$1-D$2-2thr.txt" 2>&1
done
grep -A6 "Layer step" $OUT/cpu/tables-cpu.md
cd $OUT && tar czf cpu.tgz cpu && rm -rf cpu && tar czf gpu.tgz golden.txt gpu-tests.txt moe.txt peer.txt train.txt 2>/dev/null; ls
