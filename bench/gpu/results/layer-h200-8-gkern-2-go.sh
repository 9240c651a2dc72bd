set -u
cd "$(dirname "$0")/.."
D=.device-gkern
SECONDS=0
OUT=$OUT timeout 140 bash bench/gpu/layer-bench.sh $D > $OUT/layer-bench.txt 2>&1
echo "bench exit $? at ${SECONDS}s" >> $OUT/layer-bench.txt
tar xJf $D/gpu-tests.tar.xz -C $D
timeout 25 bash $D/run-gpu-tests.sh FusedRouter > $OUT/gpu-tests.txt 2>&1; echo "gpu tests (FusedRouter) exit $? at ${SECONDS}s" >> $OUT/gpu-tests.txt
left=$((192 - SECONDS)); [ $left -gt 5 ] && { timeout $left bash $D/run.sh verify-golden --device cuda golden/*.safetensors > $OUT/golden.txt 2>&1; echo "verify-golden exit $? at ${SECONDS}s" >> $OUT/golden.txt; }
left=$((196 - SECONDS)); [ $left -gt 5 ] && { timeout $left bash $D/run-gpu-tests.sh LayerOnCuda >> $OUT/gpu-tests.txt 2>&1; echo "gpu tests (LayerOnCuda) exit $? at ${SECONDS}s" >> $OUT/gpu-tests.txt; }
tail -9 $OUT/layer-bench.txt; tail -3 $OUT/gpu-tests.txt; tail -2 $OUT/golden.txt 2>/dev/null
