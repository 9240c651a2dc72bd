#!/usr/bin/env bash
# Stop 42, call C: main (f5658fd) with lab/stop42_inplace_switch.patch, so one build runs the private grid reading A
# and B where they lie (as main), or packing B (LAB_PACKB=1), A (LAB_PACKA=1) or both; configurations interleaved in
# rounds, `moe bench-cpu --what gemm --json` on 1024^3 (shared pass at 2 threads: untouched, a control) and the lone
# T 2048 expert, at 2 threads on cores 2-3 and at 16 threads, 15 timed calls per product.
set -u
D=.device
rt=$(source $D/cpu/device-common.sh; unpacked_runtime $D)
{ date -u; lscpu | grep -E '^(Model name|CPU\(s\)|L1d|L2|L3)'; grep -m1 'cpu MHz' /proc/cpuinfo; } > $OUT/machine.txt
: > $OUT/c.jsonl
SECONDS=0
for n in 2 16; do
  pin=(); [[ $n == 2 ]] && pin=(taskset -c ${CORES:-2,3})
  for round in $(seq ${ROUNDS:-8}); do
    for cfg in base packb packa packab; do
      env=(LAB_SHAPES=0,1)
      [[ $cfg == packb || $cfg == packab ]] && env+=(LAB_PACKB=1)
      [[ $cfg == packa || $cfg == packab ]] && env+=(LAB_PACKA=1)
      env "${env[@]}" DOTNET_ROOT=$rt timeout 60 "${pin[@]}" $rt/dotnet $D/app/moe.dll bench-cpu --what gemm --threads $n \
        --fma-lanes 16 --repeats 15 --json 2>/dev/null | grep '^{' | sed "s/^{/{\"build\":\"$cfg\",\"round\":$round,/" >> $OUT/c.jsonl
    done
  done
  echo "threads $n done at $SECONDS s"
done
python3 - $OUT/c.jsonl <<'PY'
import json, sys, statistics as st, collections
recs = [json.loads(l) for l in open(sys.argv[1])]
recs = [r for r in recs if r.get('what') == 'gemm' and 'product' in r]
by = collections.defaultdict(dict)
for r in recs:
    by[(r['threads'], r['shape'][:14], r['product'][:5], r['round'])][r['build']] = r['gflops'] / r['adjacentPeakGflops']
for t in (2, 16):
    print(f"threads {t}: median share of adjacent peak [q1 q3]; per-round ratio to base, median, rounds ahead")
    for s, p in sorted({(k[1], k[2]) for k in by if k[0] == t}):
        rs = [v for k, v in by.items() if k[0] == t and k[1] == s and k[2] == p and len(v) == 4]
        line = f"  {s:14} {p:5}"
        for b in ('base', 'packb', 'packa', 'packab'):
            q = st.quantiles([100 * r[b] for r in rs], n=4)
            line += f" | {b} {st.median([100 * r[b] for r in rs]):3.0f} [{q[0]:3.0f} {q[2]:3.0f}]"
            if b != 'base':
                rat = [r[b] / r['base'] for r in rs]
                line += f" {st.median(rat):.3f} {sum(x > 1 for x in rat)}/{len(rat)}"
        print(line)
PY
