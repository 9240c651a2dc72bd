#!/usr/bin/env bash
# The MoE layer step on one GPU beside its peer, in one call (the GPU layer issue's figures):
#   1. bench/reference/torchtitan_moe_layer.py (PyTorch, torchtitan's MoE) at the qwen3 and small presets;
#   2. moe bench --layer --device cuda at both presets (--json, one line each, phases included);
#   3. optionally (LAYER_TRAIN=1) moe train --device cuda at the qwen3 shape, step time beside its layer time;
#   4. optionally (LAYER_CHECK=1) moe verify-golden --device cuda and the GPU-only unit tests.
# Everything lands in $OUT (layer.jsonl, logs); a side-by-side table is printed last.
# Usage: bash bench/gpu/layer-bench.sh [DEVICE_DIR] (the folder holding run.sh from pack-device.sh; default .device)
set -u
here=$(cd "$(dirname "$0")" && pwd)
# From bench/gpu, run in the repository root; a copy elsewhere (the device folder) runs where it is called.
case "$here" in */bench/gpu) cd "$here/../.." || exit 2;; esac
dev=${1:-.device}
OUT=${OUT:-bench-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi -L; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
peer=bench/reference/torchtitan_moe_layer.py; [ -f "$peer" ] || peer=$here/torchtitan_moe_layer.py
timeout 240 python3 "$peer" --preset qwen3,small --jsonl "$OUT/layer.jsonl" 2>&1 | tee "$OUT/peer.txt"
# LAYER_PATHS: the bfloat16 GEMM paths to time (MOESHARP_BF16_GEMM values; "default" leaves it unset).
for path in ${LAYER_PATHS:-default}; do
  for p in qwen3 small; do
    env $([ "$path" = default ] || echo "MOESHARP_BF16_GEMM=$path") timeout 180 bash "$dev/run.sh" bench --layer --device cuda --preset "$p" \
      --warmup 5 --repeats 20 --json 2>&1 | tee -a "$OUT/moe.txt" | grep '^{' >> "$OUT/layer.jsonl"
  done
done
if [ "${LAYER_TRAIN:-0}" = 1 ]; then
  timeout 150 bash "$dev/run.sh" train --device cuda --gemm-dtype bfloat16 --tokens 16384 --dim 2048 --hidden 768 --experts 128 --top-k 8 \
    --steps 8 --log-every 100 2>&1 | tee "$OUT/train.txt" | grep -E "step time|final|moe:"
fi
if [ "${LAYER_CHECK:-0}" = 1 ]; then
  timeout 120 bash "$dev/run.sh" verify-golden --device cuda "${GOLDEN:-.golden}"/*.safetensors > "$OUT/golden.txt" 2>&1; echo "verify-golden exit $?"
  grep -E "PASS|FAIL|passed|failed" "$OUT/golden.txt" | cut -c1-200
  timeout 120 bash "$dev/run-gpu-tests.sh" > "$OUT/gpu-tests.txt" 2>&1; echo "gpu tests exit $?"; tail -5 "$OUT/gpu-tests.txt"
fi
python3 - "$OUT/layer.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
peer = {r["preset"]: r for r in rows if r["impl"].startswith("torch")}
for r in rows:
    if r["impl"].startswith("torch"): continue
    p = peer.get(r["preset"])
    print(f"== {r['preset']} ({r.get('gemm_path')}): MoeSharp step {r['ms']:.2f} ms (fwd {r['forward_ms']:.2f}, bwd {r['backward_ms']:.2f}, AdamW {r['optimizer_ms']:.2f})"
          + (f" | peer {p['ms']:.2f} ms (fwd {p['forward_ms']:.2f}, bwd {p['backward_ms']:.2f}, AdamW {p['optimizer_ms']:.2f}) -> peer/ours {p['ms']/r['ms']:.2f}x" if p else ""))
    print(f"   products {r['products_ms']:.2f} ms = {r['products_tflops']:.0f} TFLOP/s; dense bf16 GEMM {r['dense_gemm_tflops'] or 0:.0f} TFLOP/s"
          + (f" (peer's torch.matmul {p['dense_gemm_tflops']:.0f})" if p else "") + f"; products/dense {r['products_of_dense'] or 0:.0%}; allocator frees/step {r.get('allocator_frees_per_step')}")
    print("   phases (synchronized per kernel): " + ", ".join(f"{k} {v:.2f}" for k, v in r["phases_ms"].items()))
PY
