#!/usr/bin/env bash
# One device call per GPU count: PyTorch references, raw NCCL, copy bandwidth, GEMMs, then MoeSharp.
#
#   bash bench/gpu/run-h100.sh NGPU          # NGPU = 1, 2 or 4; run from anywhere
#
# Writes $OUT/results-${NGPU}gpu.jsonl (every JSON line), $OUT/log-${NGPU}gpu.txt (everything
# printed) and $OUT/dotnet-<preset>-${NGPU}gpu.txt (the .NET side's raw output). Each step is
# under `timeout`, the whole script ends well inside 8 minutes; a failed step is reported and
# the script goes on. Limits (seconds) can be changed with T_LOCAL, T_EP, T_GEMM, T_NET; REPEATS (default 30) sets
# the timed runs of MoeSharp's dispatch bench (7 left a bimodal median on a cold machine: 1.38 ms where 30 gave 0.60).
set -u

NGPU=${1:-}
case "$NGPU" in
  [1-8]) ;;
  *) echo "usage: bash bench/gpu/run-h100.sh NGPU   (1..8)" >&2; exit 2 ;;
esac

# NVLink multicast must stay off on these machines (shared GPUs; see the device notes).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
OUT=${OUT:-$ROOT/bench-out}
mkdir -p "$OUT" || exit 2
RES=$OUT/results-${NGPU}gpu.jsonl
LOG=$OUT/log-${NGPU}gpu.txt
: > "$RES"

T_LOCAL=${T_LOCAL:-75} T_EP=${T_EP:-130} T_GEMM=${T_GEMM:-60} T_NET=${T_NET:-50}
PY=${PYTHON:-python3}
STEPS=()
T0=$(date +%s)

step() {  # step NAME LIMIT CMD... : run under timeout, remember rc and seconds
  local name=$1 limit=$2 t rc
  shift 2
  echo
  echo "=== $name (limit ${limit}s): $*"
  t=$(date +%s)
  timeout -k 10 "$limit" "$@"
  rc=$?
  t=$(( $(date +%s) - t ))
  case $rc in
    0) STEPS+=("$(printf '%-26s ok      %4ss' "$name" "$t")") ;;
    124|137) STEPS+=("$(printf '%-26s TIMEOUT %4ss' "$name" "$t")") ;;
    *) STEPS+=("$(printf '%-26s rc=%-4s %4ss' "$name" "$rc" "$t")") ;;
  esac
  [ $rc -ne 0 ] && FAILED=$((FAILED + 1))
  return $rc
}
FAILED=0

main() {
echo "=== machine"
nvidia-smi -L || echo "nvidia-smi failed"
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
[ -n "$CARD" ] || CARD=$($PY -c 'import torch; print(torch.cuda.get_device_name(0))' 2>/dev/null | tail -n 1)
if ! $PY - "$NGPU" <<'EOF'
import sys, torch
n = int(sys.argv[1])
v = torch.cuda.nccl.version() if torch.cuda.is_available() else None
print(f"torch {torch.__version__}  cuda {torch.version.cuda}  nccl {'.'.join(map(str, v)) if isinstance(v, tuple) else v}"
      f"  gpus visible {torch.cuda.device_count()}")
if torch.cuda.device_count() < n:
    sys.exit(f"error: {n} GPUs asked for, {torch.cuda.device_count()} visible")
EOF
then
  echo "error: torch/GPU check failed; nothing else can run" >&2
  return 1
fi
echo "NCCL_NVLS_ENABLE=$NCCL_NVLS_ENABLE TORCH_SYMM_MEM_DISABLE_MULTICAST=$TORCH_SYMM_MEM_DISABLE_MULTICAST NVSHMEM_DISABLE_NVLS=$NVSHMEM_DISABLE_NVLS"

# 1. one GPU: self-check, copy bandwidth, local steps (no exchange)
if [ "${SKIP_ONE_GPU:-0}" = 0 ]; then
step "reference 1 GPU (local)" "$T_LOCAL" \
  $PY bench/reference/bench_reference.py --preset deepseek,qwen3 --dtype "${DTYPE:-bf16}" --jsonl "$RES"
fi

# 2. NGPU GPUs: self-check, reference dispatch+combine, raw NCCL all-to-all, copy
if [ "$NGPU" -gt 1 ]; then
  step "reference $NGPU GPUs (EP)" "$T_EP" \
    $PY -m torch.distributed.run --standalone --nproc_per_node="$NGPU" \
    bench/reference/bench_reference.py --preset deepseek,qwen3 --dtype "${DTYPE:-bf16}" --jsonl "$RES"
fi

# 3. GEMMs on one GPU (SKIP_ONE_GPU=1 leaves out the one-GPU steps, for a second GPU count on the same machine)
if [ "${SKIP_ONE_GPU:-0}" = 0 ]; then
step "gemm reference 1 GPU" "$T_GEMM" $PY bench/reference/gemm_reference.py --jsonl "$RES"
fi

# 4. MoeSharp (.NET, packed as .device/)
for preset in deepseek qwen3; do
  raw=$OUT/dotnet-$preset-${NGPU}gpu.txt
  if [ ! -f .device/run.sh ]; then
    echo; echo "=== moesharp $preset: .device/run.sh is missing, skipped"
    STEPS+=("$(printf '%-26s MISSING .device/run.sh' "moesharp $preset")")
    FAILED=$((FAILED + 1))
    continue
  fi
  step "moesharp $preset" "$T_NET" \
    bash .device/run.sh bench --device cuda --gpus "$NGPU" --preset "$preset" --dtype "${DTYPE:-bf16}" --repeats "${REPEATS:-30}" --json > "$raw" 2>&1
  rc=$?
  cat "$raw"
  [ $rc -ne 0 ] && echo "moesharp $preset failed (rc=$rc); its JSON lines, if any, are still taken"
  $PY bench/gpu/summarize.py --ingest "$RES" --set impl=moesharp-cuda --set "gpus=$NGPU" \
    --set "preset=$preset" --set "card=$CARD" --set source=dotnet < "$raw" \
    || echo "ingest of $raw failed"
done

# 4b. MoeSharp's grouped GEMM (cuBLAS) on one GPU
if [ "${SKIP_ONE_GPU:-0}" = 0 ] && [ -f .device/run.sh ]; then
  raw=$OUT/dotnet-gemm.txt
  step "moesharp gemm" "$T_NET" bash .device/run.sh bench --device cuda --gemm --json > "$raw" 2>&1
  cat "$raw"
  $PY bench/gpu/summarize.py --ingest "$RES" --set "card=$CARD" --set source=dotnet < "$raw" || echo "ingest of $raw failed"
fi

# 5. summary
echo
echo "=== results ($RES)"
$PY bench/gpu/summarize.py --print-only "$RES" || echo "summarize failed"
echo
echo "=== steps"
for s in "${STEPS[@]}"; do echo "  $s"; done
echo "  total $(( $(date +%s) - T0 ))s; JSON lines: $(wc -l < "$RES"); failed steps: $FAILED"
[ "$FAILED" -eq 0 ]
}

main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
