#!/usr/bin/env bash
# The layer step of several builds side by side on the GPU machine's CPUs (no .NET there), interleaved in rounds so
# that the machine's drift hits them alike: `moe train` (6 steps, the layer's time of every step) at 2 threads pinned
# to cores 0-1 and on every core, T 2048 D 512 and T 8192 D 1024 (E 16, K 2), for
#   this        the packed build (D/app),
#   NAME        D/app with D/variants/NAME/MoeSharp.dll in place of its own (e.g. main's, to compare against),
#   this+tc0    the packed build with DOTNET_TieredCompilation=0: every method optimized when first compiled, so the
#               difference to "this" is what tiered compilation still costs in the steps measured.
# From the repository root, with D laid out by bench/gpu/pack-device.sh (D/run.sh, D/app):
#   bash D/cpu/device-ab-layer.sh D   → $OUT/ab-layer.jsonl (one record per run: every step's layer ms), ab-layer.md
# ROUNDS (default 2), SHAPES (default "2048x512 8192x1024"), THREADS (default "2 <all>") narrow it down; STEPS (default 6)
# sets moe train's steps (the figure is the median of steps 2..STEPS); PEER=1 also runs PyTorch's layer step
# (bench/cpu/torch_peer.py, STEPS-1 steps after one warm-up) after the builds of each shape and thread count in every
# round, on the same cores, and the table gains its column and each build's ratio to it, round by round.
set -uo pipefail
source "$(dirname "$0")/device-common.sh"
D=${1:?usage: device-ab-layer.sh DEVICE_FOLDER}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
rt=$(unpacked_runtime "$D")
all=$(nproc)
names="this this+tc0 $(variant_names "$D")"
for round in $(seq "${ROUNDS:-2}"); do
  for shape in ${SHAPES:-2048x512 8192x1024}; do
    t=${shape%x*} d=${shape#*x}
    for n in ${THREADS:-2 $all}; do
      for v in $names; do
        app="$D/app" tc=1
        [[ $v == this+tc0 ]] && tc=0
        [[ $v != this && $v != this+tc0 ]] && app="/tmp/app-$v"
        metrics=$(mktemp)
        MOESHARP_THREADS=$n DOTNET_TieredCompilation=$tc DOTNET_ROOT=$rt timeout 90 taskset -c "0-$((n - 1))" \
          "$rt/dotnet" "$app/moe.dll" train --steps "${STEPS:-6}" --shared-hidden 0 --log-every 100000 --tokens "$t" --dim "$d" \
          --hidden "$d" --experts 16 --top-k 2 --metrics "$metrics" >> "$OUT/ab-layer-log.txt" 2>&1
        rc=$?
        python3 - "$metrics" "$v" "$round" "$n" "$t" "$d" "$rc" >> "$OUT/ab-layer.jsonl" <<'PY'
import json, sys
path, build, rnd, n, t, d, rc = sys.argv[1:]
steps = [json.loads(l) for l in open(path) if l.startswith("{")]
print(json.dumps({"build": build, "round": int(rnd), "threads": int(n), "tokens": int(t), "dim": int(d), "rc": int(rc),
                  "layerMs": [s["layer_ms"] for s in steps], "lossBits": steps[-1]["loss_bits"] if steps else None}))
PY
        rm -f "$metrics"
        echo "round $round, T $t, $n threads, $v: rc $rc"
      done
      if [[ ${PEER:-0} == 1 ]]; then
        MOESHARP_THREADS=$n OMP_NUM_THREADS=$n MKL_NUM_THREADS=$n timeout 180 taskset -c "0-$((n - 1))" python3 \
          "$D/cpu/torch_peer.py" layer --threads "$n" --warmup 1 --iters "$(( ${STEPS:-6} - 1 ))" --tokens "$t" --dim "$d" \
          --hidden "$d" --experts 16 --top-k 2 2>> "$OUT/ab-layer-log.txt" \
          | python3 -c 'import json, sys; [print(json.dumps({"build": "pytorch", "round": int(sys.argv[1]), "threads": int(sys.argv[2]),
  "tokens": int(sys.argv[3]), "dim": int(sys.argv[4]), "stepMs": json.loads(l)["stepMs"]})) for l in sys.stdin if l.startswith("{")]' \
            "$round" "$n" "$t" "$d" >> "$OUT/ab-layer.jsonl"
        echo "round $round, T $t, $n threads, pytorch"
      fi
    done
  done
done
python3 - "$OUT/ab-layer.jsonl" > "$OUT/ab-layer.md" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
peer = {(r["tokens"], r["dim"], r["threads"], r["round"]): r["stepMs"] for r in rows if r["build"] == "pytorch"}
rows = [r for r in rows if r["build"] != "pytorch"]
builds = list(dict.fromkeys(r["build"] for r in rows))
print("Layer step (ms), median of steps 2.. per run, runs in round order; [min-max of those steps]"
      + ("; (×: PyTorch's step of the same round over it)" if peer else "") + "\n")
print("| T, D | threads | " + " | ".join(builds) + (" | PyTorch |" if peer else " |"))
print("|---|---:|" + "---|" * (len(builds) + (1 if peer else 0)))
for key in dict.fromkeys((r["tokens"], r["dim"], r["threads"]) for r in rows):
    cells = []
    for b in builds:
        runs = [r for r in rows if (r["tokens"], r["dim"], r["threads"]) == key and r["build"] == b and r["layerMs"][1:]]
        parts = []
        for r in runs:
            s = r["layerMs"][1:]
            ratio = peer.get(key + (r["round"],))
            parts.append(f"{statistics.median(s):.1f} [{min(s):.0f}-{max(s):.0f}]"
                         + (f" ({ratio / statistics.median(s):.2f}×)" if ratio else ""))
        cells.append(" / ".join(parts) or "–")
    if peer:
        cells.append(" / ".join(f"{v:.1f}" for k, v in sorted(peer.items()) if k[:3] == key) or "–")
    print(f"| {key[0]}, {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
print("\nloss bits per build:", {b: sorted({r["lossBits"] for r in rows if r["build"] == b}) for b in builds})
PY
cat "$OUT/ab-layer.md"
