#!/usr/bin/env bash
# Correctness on 1, 2 and 4 GPUs of one machine (whichever are present), for the GPU issue's checks:
# golden dispatch files bitwise (NCCL when each rank has its GPU), layer files within tolerance (on the host and with
# the layer on the GPUs), `moe run --device cuda` verified against the host (float32, and bfloat16 rows), and
# `moe train --device cuda` next to the same training on the host. Needs .device/ (bench/gpu/pack-device.sh); the
# golden files are the ones bundled with the tool (golden/). Usage: bash bench/gpu/check-gpus.sh [GPU counts...]
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
cd "$(dirname "$0")/../.." || exit 2
OUT=${OUT:-bench-out}; mkdir -p "$OUT"
counts=${*:-"1 2 4"}
have=$(nvidia-smi -L | wc -l)
status=0
for g in $counts; do
  [ "$g" -le "$have" ] || { echo "=== $g GPUs: only $have present, skipped"; continue; }
  visible=$(seq -s, 0 $((g - 1)))
  echo "=== $g GPU(s): CUDA_VISIBLE_DEVICES=$visible"
  CUDA_VISIBLE_DEVICES=$visible timeout 240 bash .device/run.sh verify-golden --device cuda --gpus "$g" \
    > "$OUT/golden-${g}gpu.txt" 2>&1 || status=1
  grep -E "PASS|FAIL|passed" "$OUT/golden-${g}gpu.txt" | cut -c1-400
  CUDA_VISIBLE_DEVICES=$visible timeout 240 bash .device/run.sh run --device cuda --gpus "$g" > "$OUT/run-${g}gpu.txt" 2>&1 || status=1
  grep -E "^world|match|verified|moe:" "$OUT/run-${g}gpu.txt" | cut -c1-160
  # bfloat16 rows: the packed kernels (D = 7168: packs of 8 and pairs) and D = 129 (the one-value kernels), both layouts.
  for args in "--world $g --sp 1 --tokens 4096 --dim 7168 --experts 256" \
              "--world $((g * 2)) --sp 2 --tokens 1001 --dim 129 --experts 32 --layout sharded --sharding balanced --score before"; do
    CUDA_VISIBLE_DEVICES=$visible timeout 240 bash .device/run.sh run --device cuda --gpus "$g" --dtype bfloat16 $args \
      > "$OUT/run-bf16-${g}gpu.txt" 2>&1 || status=1
    echo "bf16 run $args:"; grep -E "match|verified|moe:|rank .*:" "$OUT/run-bf16-${g}gpu.txt" | cut -c1-160
  done
  # Training with the layer on the GPUs (EP over the g GPUs, SP 1) next to the host's losses for the same seed.
  for dev in host cuda; do
    gpus=""; [ "$dev" = cuda ] && gpus="--gpus $g"
    CUDA_VISIBLE_DEVICES=$visible timeout 240 bash .device/run.sh train --device $dev $gpus --world "$g" --steps 100 --log-every 1000 \
      > "$OUT/train-$dev-${g}gpu.txt" 2>&1 || status=1
    echo "train --device $dev --world $g:"; grep -E "final loss|moe:" "$OUT/train-$dev-${g}gpu.txt" | cut -c1-160
  done
done
exit $status
