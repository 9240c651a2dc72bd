#!/usr/bin/env bash
# On one GPU, what the library, checkpoint, fault and uneven-token work added (check-gpus.sh has the dispatch and
# layer checks): `moe layer --device cuda` for each checkpoint family of tests/MoeSharp.Tests/Checkpoints/data against
# its float64 expected output; `moe bench --uneven --device cuda` (8 ranks sharing
# the GPU, so the exchanges are host-staged); `moe soak --device cuda`; an interrupted run's exit code.
# Needs .device/ (bench/gpu/pack-device.sh). Usage: bash bench/gpu/check-features.sh; logs in $OUT.
set -u
export NCCL_NVLS_ENABLE=0
cd "$(dirname "$0")/../.." || exit 2
OUT=${OUT:-bench-out}; mkdir -p "$OUT"
status=0
data=tests/MoeSharp.Tests/Checkpoints/data

echo "=== moe layer --device cuda against the float64 reference"
for case in qwen2_moe:1 qwen3_moe:1 mixtral:0 deepseek_v3:2; do
  family=${case%%:*} layer=${case##*:}
  timeout 120 bash .device/run.sh layer --checkpoint "$data/$family" --layer "$layer" --input "$data/$family/input.safetensors" \
    --output "$OUT/y-$family.safetensors" --device cuda > "$OUT/layer-$family.txt" 2>&1 || status=1
  grep -E "moe:|time|ms" "$OUT/layer-$family.txt" | head -3 | cut -c1-160
  python3 - "$OUT/y-$family.safetensors" "$data/$family/expected-layer$layer.safetensors" "$family" <<'PY' || status=1
import json, struct, sys
import numpy as np
def read(path, name):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8:8 + n])[name]
    begin, end = meta["data_offsets"]
    return np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=np.float32).reshape(meta["shape"])
actual, expected = read(sys.argv[1], "y"), read(sys.argv[2], "y")
error = float(np.abs(actual.astype(np.float64) - expected).max() / np.abs(expected).max())
print(f"{sys.argv[3]}: largest error / largest value = {error:.2e} (tolerance 1e-4)")
sys.exit(0 if error < 1e-4 else 1)
PY
done

echo "=== soak --device cuda"
timeout 100 bash .device/run.sh soak --device cuda --seconds ${SOAK_SECONDS:-45} > "$OUT/soak-cuda.txt" 2>&1 || status=1
tail -3 "$OUT/soak-cuda.txt" | cut -c1-200

echo "=== SIGINT during train --device cuda"
# A background job of a non-interactive shell starts with SIGINT ignored: give it the default disposition back.
env --default-signal=INT bash .device/run.sh train --device cuda --steps 100000 > "$OUT/sigint.txt" 2>&1 &
pid=$!
sleep 20
kill -INT "$pid" 2>/dev/null
start=$(date +%s.%N)
wait "$pid"; code=$?
end=$(date +%s.%N)
echo "exit $code after SIGINT, $(python3 -c "print(f'{$end - $start:.2f}')") s to end; $(tail -1 "$OUT/sigint.txt" | cut -c1-120)"
[ "$code" = 130 ] || status=1
echo "=== bench --uneven --device cuda --world 8 (one GPU, host-staged exchanges)"
timeout 180 bash .device/run.sh bench --uneven --device cuda --world 8 --repeats ${UNEVEN_REPEATS:-7} > "$OUT/uneven-cuda.txt" 2>&1 || status=1
cat "$OUT/uneven-cuda.txt" | cut -c1-220

exit $status
