#!/usr/bin/env bash
# One device call that times the dispatcher and the layer on every backend the architecture touches, for a
# before/after comparison of a refactor that must not change speed (issue 16): host (world 1 and 4, float32 and
# bfloat16, the layer step), ilgpu-cpu, and cuda (qwen3/deepseek dispatch + combine, the layer step).
# Each line of the summary is a median of --repeats runs; run the same script on the old and the new build.
# Usage: bash bench/gpu/arch-bench.sh [DEVICE_DIR] [LABEL]   (DEVICE_DIR holds run.sh from pack-device.sh)
set -u
dev=${1:-.device}; label=${2:-build}
OUT=${OUT:-bench-out}; mkdir -p "$OUT"
log="$OUT/arch-$label.jsonl"; : > "$log"
moe() { timeout 240 bash "$dev/run.sh" "$@" --json 2>>"$OUT/arch-$label.err" | grep '^{' >> "$log"; }
command -v nvidia-smi >/dev/null && nvidia-smi -L
nproc
moe bench --world 1 --repeats 9
moe bench --world 1 --dtype bf16 --repeats 9
moe bench --world 4 --tokens 4096 --repeats 9
moe bench --layer --preset small --dtype f32 --repeats 5
moe bench --device ilgpu-cpu --tokens 512 --dim 256 --experts 16 --top-k 2 --repeats 5
if command -v nvidia-smi >/dev/null; then
  moe bench --device cuda --preset qwen3 --repeats 20
  moe bench --device cuda --preset deepseek --repeats 20
  moe bench --layer --device cuda --preset qwen3 --warmup 5 --repeats 20
  moe bench --layer --device cuda --preset small --warmup 5 --repeats 20
fi
python3 - "$log" "$label" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("kind") not in ("dispatch_combine", "dispatch", "combine", "layer_step", "layer", "copy") and "forward_ms" not in r:
        continue
    shape = r.get("preset") or f"T{r.get('tokens')} D{r.get('dim')} E{r.get('experts')} K{r.get('top_k')}"
    print(f"{sys.argv[2]:>7} {r.get('device','?'):>9} w{r.get('world','1')} {r.get('dtype','')} {shape:<24} "
          f"{r.get('kind','layer'):<17} {r['impl']:<20} {r['ms']:9.3f} ms")
PY
