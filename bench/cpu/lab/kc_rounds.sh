#!/usr/bin/env bash
# Alternates `moe bench-cpu --what gemm --json` over environments (a build with stop39_kc_switch.patch reads LAB_KC,
# LAB_MC, LAB_NC), ROUNDS times, and prints one JSON line per product: {v: environment, r: round, row, adj: share of
# the adjacent FMA peak, g: GFLOP/s}. Run from that build's checkout root.
# Usage: bash kc_rounds.sh THREADS ROUNDS "LAB_KC=384" "LAB_KC=1024" ... > runs.jsonl; python3 kc_summary.py runs.jsonl
set -u
T=$1; R=$2; shift 2
for r in $(seq "$R"); do for v in "$@"; do
  env $v ./src/MoeSharp.Cli/bin/Release/net10.0/moe bench-cpu --what gemm --threads "$T" --fma-lanes 16 --repeats 5 \
    --warmup 3 --json 2>/dev/null | python3 -c "
import sys,json
for l in sys.stdin:
    d=json.loads(l)
    if d.get('what')=='gemm': print(json.dumps({'v':'$v','r':$r,'row':d['shape'][:22]+' '+d['product'][:4],'adj':d['fractionOfAdjacentPeak'],'g':d['gflops']}))
"; done; done
