#!/usr/bin/env bash
# Per-kernel device time of a few layer steps under Nsight Compute (duration only, clocks left alone): which kernels
# a step's time goes to (cuBLAS products, layout passes, the rest). moe bench --layer --warmup 0 --repeats 1 runs three
# steps (one timed, two profiled) and one dense GEMM; the summary divides by three.
# Usage: NCU_SPECS="default:qwen3 each:small" bash bench/gpu/ncu-layer.sh [DEVICE_DIR]   (MOESHARP_BF16_GEMM:preset)
set -u
dev=${1:-.device-gpu}
OUT=${OUT:-out}; mkdir -p "$OUT"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"; nvidia-smi -L
for spec in ${NCU_SPECS:-default:qwen3 default:small}; do
  path=${spec%%:*}; p=${spec#*:}
  env $([ "$path" = default ] || echo "MOESHARP_BF16_GEMM=$path") timeout 200 "$NCU" --clock-control none \
    --metrics gpu__time_duration.sum --csv --log-file "$OUT/ncu-$path-$p.csv" \
    bash "$dev/run.sh" bench --layer --device cuda --preset "$p" --warmup 0 --repeats 1 --json > "$OUT/ncu-$path-$p.txt" 2>&1
  echo "$path $p exit $?"
done
python3 - "$OUT" <<'PY'
import csv, sys, glob, collections, io
for f in sorted(glob.glob(sys.argv[1] + "/ncu-*.csv")):
    lines = open(f).read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
    if start is None: print(f, "no table"); continue
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))
    tot = collections.defaultdict(lambda: [0.0, 0]); grid = {}
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum": continue
        v = float(r["Metric Value"].replace(",", "")); unit = r["Metric Unit"]
        ms = v * {"ns": 1e-6, "nsecond": 1e-6, "us": 1e-3, "usecond": 1e-3, "ms": 1.0, "msecond": 1.0}.get(unit, 1e3) / 3
        k = r["Kernel Name"][:90]; tot[k][0] += ms; tot[k][1] += 1; grid[k] = r.get("Grid Size", "")
    print("==", f, "ms per step (kernel time / 3)", round(sum(v[0] for v in tot.values()), 2))
    for k, (ms, n) in sorted(tot.items(), key=lambda kv: -kv[1][0])[:30]:
        print(f"{ms:8.3f} ms {n / 3:5.1f}/step  {k}  grid {grid[k]}")
PY
