#!/usr/bin/env bash
# Stop 46, call E: home tasks (each participant of a HostWorkerTeam pass first runs the task of its own index) beside
# main without them (variant "dyn" = ba94733): `moe bench-cpu --what gemm` at 16 threads, builds alternating (which
# leads swaps every round) for up to 90 s, then the layer steps at 16 threads (device-ab-layer.sh, 2 rounds). Lay out
# .device with `git apply bench/cpu/lab/stop46_home_tasks.patch && bash bench/cpu/prepare-device.sh dyn=ba94733`
# (dyn: the library without the patch), then run this with carry [".device"]; the run's files come back as one
# $OUT/raw.tgz (a call returns at most 8 files: in stop 46 this call lost all but 8 of its 23).
# Prints, per row, each build's median GFLOP/s and the median over rounds of this build's rate over dyn's in the same
# round.
set -u
D=.device
source $D/cpu/device-common.sh
rt=$(unpacked_runtime $D)
variant_names $D > /dev/null
start=$SECONDS
gemm() { # threads dir round build [taskset...]
  local n=$1 dir=$2 r=$3 v=$4; shift 4
  local app=$D/app; [[ $v != this ]] && app=/tmp/app-$v
  DOTNET_ROOT=$rt timeout 90 "$@" "$rt/dotnet" "$app/moe.dll" bench-cpu --what gemm --threads "$n" --fma-lanes 16 \
    --repeats 11 --json > "$dir/$v-r$r.jsonl" 2> "$dir/$v-r$r.err"
}
mkdir -p $OUT/ab16
r=0
while (( SECONDS - start < 90 )); do
  r=$((r + 1)); order="this dyn"; (( r % 2 == 0 )) && order="dyn this"
  for v in $order; do gemm 16 $OUT/ab16 $r $v; done
done
echo "gemm: $r rounds at 16 threads, $((SECONDS - start)) s"
ROUNDS=2 THREADS=16 timeout 45 bash $D/cpu/device-ab-layer.sh $D > $OUT/ab-layer-run.txt 2>&1
echo "layer rc $?"
python3 - $OUT/ab16 <<'PY'
import glob, json, os, re, statistics as st, sys
for d in sys.argv[1:]:
    rows = {}
    for f in sorted(glob.glob(os.path.join(d, "*-r*.jsonl"))):
        build, rnd = re.match(r"(.+)-r(\d+)\.jsonl", os.path.basename(f)).groups()
        for line in open(f):
            if not line.startswith("{"): continue
            x = json.loads(line)
            if x.get("what") != "gemm": continue
            rows.setdefault((x["shape"][:24], x["product"][:5]), {}).setdefault(build, {})[int(rnd)] = (x["gflops"], x["fractionOfAdjacentPeak"])
    print(f"== {d}: row | this GFLOP/s (share) | dyn | this/dyn per round | median | rounds ahead")
    for k, v in rows.items():
        t, y = v.get("this", {}), v.get("dyn", {})
        both = sorted(set(t) & set(y))
        ratios = [t[r][0] / y[r][0] for r in both]
        med = lambda m: f"{st.median(a for a, _ in m.values()):.0f} ({100 * st.median(b for _, b in m.values()):.0f} %)" if m else "-"
        print(f"{k[0]} {k[1]} | {med(t)} | {med(y)} | {' '.join(f'{a:.2f}' for a in ratios)} | "
              f"{st.median(ratios) if ratios else 0:.3f} | {sum(a > 1 for a in ratios)}/{len(ratios)}")
PY
cat $OUT/ab-layer.md 2>/dev/null | cut -c1-220
(cd $OUT && tar czf raw.tgz ab16 ab-layer* && rm -rf ab16 ab-layer*)
