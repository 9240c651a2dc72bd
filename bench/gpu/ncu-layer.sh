#!/usr/bin/env bash
# Per-kernel device time of one layer step (ncu, duration only), to split the expert products into cuBLAS and conversions.
set -u
dev=${1:-.device-gpu}
OUT=${OUT:-out}; mkdir -p "$OUT"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"; nvidia-smi -L
for spec in "default qwen3" "grouped16 qwen3" "default small"; do
  set -- $spec; path=$1; p=$2
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
        ms = v / 1e6 if unit == "nsecond" else v / 1e3 if unit == "usecond" else v if unit == "msecond" else v * 1e3
        k = r["Kernel Name"][:90]; tot[k][0] += ms; tot[k][1] += 1; grid[k] = r.get("Grid Size", "")
    print("==", f, "total ms", round(sum(v[0] for v in tot.values()), 2))
    for k, (ms, n) in sorted(tot.items(), key=lambda kv: -kv[1][0])[:25]:
        print(f"{ms:9.2f} ms {n:5d}x  {k}  grid {grid[k]}")
PY
