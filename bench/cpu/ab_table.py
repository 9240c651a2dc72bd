"""Markdown tables of bench/cpu/device-run-gemm.sh's side-by-side builds (its ab-gemm.jsonl): per thread count, each
product's GFLOP/s for every build in every round, and each round's measured FMA peak (512-bit, the kernel's width).

    python3 bench/cpu/ab_table.py ab-gemm.jsonl [BUILD ...]   # builds in column order (default: as they appear)
"""
from __future__ import annotations

import json
import sys


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
    builds = sys.argv[2:] or list(dict.fromkeys(r["build"] for r in rows))
    rounds = sorted({r["round"] for r in rows})
    for n in sorted({r["threads"] for r in rows}):
        at = [r for r in rows if r["threads"] == n]
        print(f"\n#### {n} threads: GFLOP/s of each build, rounds " + " / ".join(map(str, rounds)) + "\n")
        print("| shape | product | " + " | ".join(builds) + " |")
        print("|---|---|" + "---:|" * len(builds))
        peaks = {}
        for r in at:
            if r["what"] == "fma-peak" and r.get("gemmKernel"):
                key = (r["build"], r["round"])
                peaks[key] = max(peaks.get(key, 0.0), r["gflops"])
        print("| measured FMA peak | (kernel's width) | " + " | ".join(
            " / ".join(f"{peaks[(b, k)]:.0f}" if (b, k) in peaks else "–" for k in rounds) for b in builds) + " |")
        gemm = {}
        for r in at:
            if r["what"] == "gemm":
                gemm[(r["shape"], r["product"], r["build"], r["round"])] = r["gflops"]
        for shape, product in dict.fromkeys((s, p) for (s, p, _, _) in gemm):
            cells = [" / ".join(f"{gemm[(shape, product, b, k)]:.0f}" if (shape, product, b, k) in gemm else "–"
                                for k in rounds) for b in builds]
            print(f"| {shape} | {product} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
