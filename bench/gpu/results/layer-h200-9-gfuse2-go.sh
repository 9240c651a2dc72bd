#!/usr/bin/env bash
# h-gfuse2's one device call (timeout 120 s): the layer bench (peer + both presets), the CUDA facts that cover RowDots
# and PlaceTokenRows (host bits; placed vs padded layer), then Nsight Compute on the combine/dispatch row kernels of
# one qwen3 step with whatever time is left.
set -u
d=.device-gfuse2
start=$SECONDS
[ -d $d/gpu-tests ] || tar xJf $d/gpu-tests.tar.xz -C $d
OUT=$OUT timeout 72 bash bench/gpu/layer-bench.sh $d > "$OUT/log.txt" 2>&1
echo "bench exit $? at $((SECONDS - start)) s" | tee -a "$OUT/log.txt"
for f in CudaKernels_MatchHost PlacedRows_OnCuda; do
  timeout 14 bash $d/run-gpu-tests.sh $f >> "$OUT/gpu-tests.txt" 2>&1
  echo "$f exit $? at $((SECONDS - start)) s" | tee -a "$OUT/gpu-tests.txt"
done
left=$((114 - (SECONDS - start)))
if [ $left -gt 25 ]; then
  timeout $left /usr/local/cuda/bin/ncu --clock-control none --kernel-name regex:"GatherReduce|RowDots|PlaceTokens" \
    --launch-count 6 --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__block_size,launch__grid_size \
    --csv --log-file "$OUT/ncu.csv" bash $d/run.sh bench --layer --device cuda --preset qwen3 --warmup 0 --repeats 1 --json > "$OUT/ncu-run.txt" 2>&1
  echo "ncu exit $? at $((SECONDS - start)) s" | tee -a "$OUT/log.txt"
fi
