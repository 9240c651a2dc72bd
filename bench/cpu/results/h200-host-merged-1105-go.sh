# Issue 12's layer steps and GEMM (with the measured FMA peak) beside PyTorch in one call, then the layer profiles.
set -u
cd "$(dirname "$0")/.."
D=.device-cpu
export OUT
SKIP=dispatch,exchange,run BUDGET_S=${BUDGET_S:-210} STEP_TIMEOUT=60 bash $D/cpu/device-run.sh $D > $OUT/stdout.txt 2>&1
for shape in "2048 512" "8192 1024"; do
  set -- $shape
  MOESHARP_THREADS=2 timeout 30 taskset -c 0,1 bash "$D/run.sh" train --shared-hidden 0 --steps 4 --tokens "$1" \
    --dim "$2" --hidden "$2" --experts 16 --top-k 2 --profile > "$OUT/profile-layer-T$1-D$2-2thr.txt" 2>&1
done
cat $OUT/tables-cpu.md
cd $OUT && tar czf profiles.tgz profile-*.txt && rm -f profile-*.txt
