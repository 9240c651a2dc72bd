"""MoeSharp on CPUs next to its PyTorch peer, in one run, at several thread counts (issue 12).

Runs `moe bench-cpu`, `moe bench`, `moe train` and the default `moe run` (MoeSharp, threads set through
MOESHARP_THREADS / --threads) and bench/cpu/torch_peer.py (torch.set_num_threads) at each thread count, then prints
markdown tables with the ratios and appends every raw JSON record to --jsonl. A step that fails or runs past its
timeout is reported and skipped. See bench/RESULTS-cpu.md for how it is run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LAYER_SHAPES = [dict(tokens=2048, dim=512, hidden=512, experts=16, top_k=2),
                dict(tokens=8192, dim=1024, hidden=1024, experts=16, top_k=2)]


def run(cmd: list, env_extra: dict, timeout: int, log) -> str | None:
    env = dict(os.environ, **{k: str(v) for k, v in env_extra.items()})
    shown = " ".join(f"{k}={v}" for k, v in env_extra.items()) + " " + " ".join(shlex.quote(c) for c in cmd)
    print(f"$ {shown.strip()}", file=log, flush=True)
    t0 = time.time()
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  TIMEOUT after {timeout} s", file=log, flush=True)
        return None
    print(p.stdout + p.stderr, file=log, flush=True)
    print(f"  ({time.time() - t0:.1f} s, rc {p.returncode})", file=log, flush=True)
    return p.stdout if p.returncode == 0 else None


def json_lines(text: str | None) -> list:
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def fmt(value, suffix: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:.2f}{suffix}" if suffix else f"{value:.1f}"


def rounds_by_row(rows: list) -> dict:
    """Each (shape, product)'s records, in first-seen order of the rows and round order within each."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r.get("shape"), r.get("product")), []).append(r)
    return groups


def lower_median(values: list, key=None):
    """The middle one of values in key order (the lower middle one of an even count): always one of the values."""
    return sorted(values, key=key)[(len(values) - 1) // 2]


def median_rows(groups: dict) -> list:
    """One row per (shape, product) of rounds_by_row's groups, in their order: the round whose GFLOP/s is the median of
    that row's rounds, so its peaks and fractions stay those measured with it."""
    return [lower_median(g, key=lambda r: r["gflops"]) for g in groups.values()]


def pct(value, peak) -> str:
    """value as a percentage of peak; – where either is missing."""
    return f"{value / peak:.0%}" if (value is not None and peak) else "–"


def each_round(rounds: list) -> str:
    """Every round's share of its own adjacent peak, in round order: "75 / 77 / 56 %"."""
    return " / ".join(pct(r["gflops"], r.get("adjacentPeakGflops")).rstrip("%") for r in rounds) + " %"


def median_share(rounds: list, ceiling: str = "adjacentPeakGflops") -> str:
    """The median of the rounds' shares of their own adjacent ceilings (lower_median; the FMA peak unless `ceiling`
    names another field, such as the micro-kernel's cache-resident rate): each share pairs a product with the ceiling
    of its own moment, so on cores whose speed moves between rounds this is the typical fraction, where the median
    round's share is the fraction of whichever round ran at the typical speed."""
    shares = [r["gflops"] / r[ceiling] for r in rounds if r.get(ceiling)]
    return f"{lower_median(shares):.0%}" if shares else "–"


def dispatch_combine(records):
    """(dispatch + combine ms, fraction of copy) from `moe bench --json`: the moesharp-metrics/1 records (one per
    kind: dispatch_combine, copy) or the older single object (dispatchMs, combineMs, fractionOfCopy)."""
    by_kind = {r.get("kind"): r for r in records if r.get("schema") == "moesharp-metrics/1"}
    if "dispatch_combine" in by_kind:
        dc, copy = by_kind["dispatch_combine"], by_kind.get("copy")
        return dc["ms"], (dc["gb_per_s"] / copy["gb_per_s"] if copy else None)
    old = next((r for r in records if "dispatchMs" in r), None)
    return (old["dispatchMs"] + old["combineMs"], old.get("fractionOfCopy")) if old else (None, None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--moe", default="dotnet src/MoeSharp.Cli/bin/Release/net10.0/moe.dll", help="how to start moe")
    ap.add_argument("--python", default=sys.executable, help="the interpreter with torch")
    ap.add_argument("--threads", default=f"2,{os.cpu_count()}", help="comma-separated thread counts")
    ap.add_argument("--tokens", type=int, default=4096, help="dispatch: tokens per rank")
    ap.add_argument("--dim", type=int, default=1024, help="dispatch: D")
    ap.add_argument("--experts", type=int, default=64, help="dispatch: E")
    ap.add_argument("--top-k", type=int, default=8, help="dispatch: K")
    ap.add_argument("--layer-steps", type=int, default=5, help="layer: timed steps (median)")
    ap.add_argument("--layer-rounds", type=int, default=1,
                    help="layer: alternate MoeSharp's and PyTorch's runs this many times; rows give each side's median "
                         "step over the rounds, and every round's ratio and the median of those ratios")
    ap.add_argument("--skip", default="", help="comma list of: gemm,dispatch,exchange,layer,run,large-layer")
    ap.add_argument("--timeout", type=int, default=240, help="seconds per command")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of moe bench and the dispatch peer (median)")
    ap.add_argument("--fma-lanes", type=int, default=8, help="float32 lanes per FMA unit for the peak (bench-cpu --fma-lanes)")
    ap.add_argument("--gemm-rounds", type=int, default=1,
                    help="GEMM: alternate MoeSharp's and PyTorch's runs this many times; rows give each side's median GFLOP/s "
                         "over the rounds (the VM's clock drifts between processes), and MoeSharp's rows every round's "
                         "share of its adjacent peak and the median of those shares")
    ap.add_argument("--gemm-warmup", type=int, default=20,
                    help="GEMM: untimed calls of each product first, both peers (a few leave a product on 16 threads "
                         "short of its steady rate: bench/RESULTS-cpu.md, stop 26)")
    ap.add_argument("--gemm-repeats", type=int, default=11, help="GEMM: timed calls of each product (median), both peers")
    ap.add_argument("--pin", action="store_true", help="run each command under taskset on cores 0..threads-1")
    ap.add_argument("--cores", default=None,
                    help="with --pin, the taskset core list for the smallest thread count instead of 0..threads-1 "
                         "(both peers and the probes on the same cores)")
    ap.add_argument("--jsonl", default="results-cpu.jsonl")
    ap.add_argument("--log", default="log-cpu.txt")
    a = ap.parse_args()
    moe_base = shlex.split(a.moe)
    py_base = [a.python, os.path.join(HERE, "torch_peer.py")]
    skip = set(filter(None, a.skip.split(",")))
    threads = [int(t) for t in a.threads.split(",")]
    records = []

    def add_table(table):
        title, rows = table
        print(f"\n### {title}\n")
        print("\n".join(rows), flush=True)
    with open(a.log, "a") as log, open(a.jsonl, "a") as jl:
        def keep(recs, **tags):
            for r in recs:
                r.update(tags)
                records.append(r)
                jl.write(json.dumps(r) + "\n")
            jl.flush()
            return recs

        for n in threads:
            cores = a.cores if a.cores and n == min(threads) else f"0-{n - 1}"
            pin = ["taskset", "-c", cores] if a.pin else []
            moe = pin + moe_base
            py = pin + py_base
            env = {"MOESHARP_THREADS": n, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}
            if "layer" not in skip:
                spread = a.layer_rounds > 1
                rows = ["| shape | MoeSharp layer step (ms) | PyTorch step (ms) | MoeSharp faster by "
                        + ("| faster by, each round | faster by, median of the rounds " if spread else "") + "|",
                        "|---|---:|---:|---:|" + ("---:|---:|" if spread else "")]
                for s in LAYER_SHAPES:
                    if s["tokens"] > 2048 and "large-layer" in skip:
                        continue
                    args = ["--tokens", str(s["tokens"]), "--dim", str(s["dim"]), "--hidden", str(s["hidden"]),
                            "--experts", str(s["experts"]), "--top-k", str(s["top_k"])]
                    pairs = []
                    for rnd in range(1, a.layer_rounds + 1):
                        out = run(moe + ["train", "--steps", str(a.layer_steps + 1), "--shared-hidden", "0",
                                         "--log-every", "100000"] + args, env, a.timeout, log)
                        m = re.search(r"of which the layer \(forward, backward, its AdamW\) ([0-9.]+) ms", out or "")
                        mine = float(m.group(1)) if m else None
                        keep([{"what": "layer", "threads": n, **s, "stepMs": mine}] if mine else [], peer="moesharp",
                             round=rnd)
                        tp = keep(json_lines(run(py + ["layer", "--threads", str(n), "--warmup", "1", "--iters",
                                                       str(a.layer_steps)] + args, env, a.timeout, log)), round=rnd)
                        pairs.append((mine, tp[0]["stepMs"] if tp else None))
                    # Each side's median over the rounds; each round's ratio pairs the two runs of the same moment.
                    mine_ms = [p[0] for p in pairs if p[0]]
                    theirs_ms = [p[1] for p in pairs if p[1]]
                    mine = lower_median(mine_ms) if mine_ms else None
                    theirs = lower_median(theirs_ms) if theirs_ms else None
                    ratios = [p[1] / p[0] if (p[0] and p[1]) else None for p in pairs]
                    label = f"T {s['tokens']}, D {s['dim']}, H {s['hidden']}, E {s['experts']}, K {s['top_k']}"
                    row = f"| {label} | {fmt(mine)} | {fmt(theirs)} | {fmt(theirs / mine if (mine and theirs) else None, 'x')} |"
                    if spread:
                        known = [r for r in ratios if r is not None]
                        row += (f" {' / '.join(fmt(r, 'x') for r in ratios)} |"
                                f" {fmt(lower_median(known) if known else None, 'x')} |")
                    rows.append(row)
                add_table((f"Layer step (forward, backward, AdamW), float32, {n} threads"
                           + (f"; each side's median of {a.layer_rounds} alternating rounds" if spread else ""), rows))
            if "gemm" not in skip:
                out, theirs = [], []
                for rnd in range(1, a.gemm_rounds + 1):
                    out += keep(json_lines(run(moe + ["bench-cpu", "--what", "gemm", "--json", "--threads", str(n),
                                                      "--warmup", str(a.gemm_warmup), "--repeats", str(a.gemm_repeats),
                                                      "--fma-lanes", str(a.fma_lanes)],
                                               env, a.timeout, log)), peer="moesharp", round=rnd)
                    theirs += keep(json_lines(run(py + ["gemm", "--threads", str(n), "--warmup", str(a.gemm_warmup),
                                                        "--iters", str(a.gemm_repeats)], env, a.timeout, log)), round=rnd)
                my_rounds = rounds_by_row([r for r in out if r.get("what") == "gemm"])
                mine = median_rows(my_rounds)
                theirs = median_rows(rounds_by_row(theirs))
                probes = [r for r in out if r.get("what") == "fma-peak"]
                # Every round's share of its own adjacent peak, and their median, so that a row's spread shows beside
                # its median round.
                spread = a.gemm_rounds > 1
                rows = ["| shape | product | MoeSharp GFLOP/s | of nominal peak | of measured peak | of adjacent peak "
                        + ("| of adjacent, each round | of adjacent, median of the rounds " if spread else "")
                        + "| of the kernel's ceiling" + (", median of the rounds " if spread else " ")
                        + "| PyTorch GFLOP/s | PyTorch of nominal | PyTorch of measured | MoeSharp / PyTorch |",
                        "|---|---|---:|---:|---:|---:|" + ("---:|---:|" if spread else "") + "---:|---:|---:|---:|---:|"]
                for m in mine:
                    t = next((t for t in theirs if t["shape"] == m["shape"] and t["product"] == m["product"]), None)
                    # The peer's fraction of the same peaks shows how far each peak is from what these cores deliver.
                    nom, meas = m.get("peakGflops"), m.get("measuredPeakGflops")
                    row_rounds = my_rounds[(m["shape"], m["product"])]
                    rows.append(f"| {m['shape']} | {m['product']} | {m['gflops']:.1f} | {m['fractionOfPeak']:.0%} | "
                                f"{pct(m['gflops'], meas)} | {pct(m['gflops'], m.get('adjacentPeakGflops'))} | "
                                + (f"{each_round(row_rounds)} | {median_share(row_rounds)} | " if spread else "")
                                + f"{median_share(row_rounds, 'adjacentKernelCeilingGflops')} | "
                                + f"{fmt(t['gflops'] if t else None)} | "
                                f"{pct(t['gflops'] if t else None, nom)} | {pct(t['gflops'] if t else None, meas)} | "
                                f"{fmt(m['gflops'] / t['gflops'] if t else None, 'x')} |")
                nominal = mine[0]["peakGflops"] if mine else float("nan")
                widths = sorted({p["bits"] for p in probes}, reverse=True)
                measured = "; ".join(f"{b}-bit " + " / ".join(f"{p['gflops']:.1f}" for p in probes if p["bits"] == b)
                                     + (" (the kernel's)" if any(p.get("gemmKernel") for p in probes if p["bits"] == b) else "")
                                     for b in widths) or "–"
                rounds = (f"; each side's median row of {a.gemm_rounds} alternating rounds, peaks of the same round"
                          if a.gemm_rounds > 1 else "")
                add_table((f"GEMM, {n} threads{rounds}, each product the median of {a.gemm_repeats} calls after "
                           f"{a.gemm_warmup} untimed (FMA peak: nominal {nominal:.1f} GFLOP/s, measured before / after the GEMM "
                           f"{measured} GFLOP/s; 'of measured' against the higher; 'of adjacent' against the higher of two short "
                           f"probes right before and after that product; 'of the kernel's ceiling' against the higher of the "
                           f"micro-kernel's cache-resident rates taken right before and after it)", rows))
            if "dispatch" not in skip:
                shape = ["--tokens", str(a.tokens), "--dim", str(a.dim), "--experts", str(a.experts), "--top-k", str(a.top_k)]
                reps = ["--warmup", "1", "--repeats", str(a.repeats)]
                w1 = keep(json_lines(run(moe + ["bench", "--json"] + shape + reps, env, a.timeout, log)), peer="moesharp")
                w4 = keep(json_lines(run(moe + ["bench", "--json", "--world", "4"] + shape + reps, env, a.timeout, log)), peer="moesharp")
                tp = keep(json_lines(run(py + ["dispatch", "--threads", str(n), "--warmup", "1", "--iters", str(a.repeats)] + shape,
                                         env, a.timeout, log)))
                rows = ["| world | MoeSharp dispatch + combine (ms) | of copy | PyTorch (torchtitan) (ms) | MoeSharp faster by |", "|---|---:|---:|---:|---:|"]
                for label, r in (("1", w1), ("4", w4)):
                    if not r:
                        rows.append(f"| {label} | failed | | | |")
                        continue
                    ms, of_copy = dispatch_combine(r)
                    t_ms = tp[0]["dispatchMs"] + tp[0]["combineMs"] if (tp and label == "1") else None
                    rows.append(f"| {label} | {fmt(ms)} | {f'{of_copy:.0%}' if of_copy else '–'} | {fmt(t_ms)} | "
                                f"{fmt(t_ms / ms if (t_ms and ms) else None, 'x')} |")
                add_table((f"Dispatch + combine, T {a.tokens}/rank, D {a.dim}, E {a.experts}, K {a.top_k}, float32, {n} threads", rows))
            if "exchange" not in skip:
                ex = keep(json_lines(run(moe + ["bench-cpu", "--what", "exchange", "--json", "--threads", str(n), "--world", "4,8",
                                                "--repeats", str(a.repeats)], env, a.timeout, log)), peer="moesharp")
                rows = ["| world | all-to-all-v (ms) | GB/s | copy GB/s | of copy |", "|---|---:|---:|---:|---:|"]
                for r in ex:
                    rows.append(f"| {r['world']} | {r['exchangeMs']:.2f} | {r['exchangeGBs']:.2f} | {r['copyGBs']:.2f} | {r['fractionOfCopy']:.0%} |")
                add_table((f"In-process all-to-all-v, 64 MiB per rank, {n} threads", rows))
            if "run" not in skip:
                out = run(moe + ["run"], env, a.timeout, log)
                m = re.findall(r"\(([0-9.]+) ms for dispatch, experts, combine and reduce on rank 0\)", out or "")
                keep([{"what": "run", "threads": n, "rankWorkMs": [float(v) for v in m]}], peer="moesharp")
                add_table((f"Default `moe run`, {n} threads", ["| case | rank work on rank 0 (ms) |", "|---|---:|"] +
                               [f"| {i + 1} | {float(v):.1f} |" for i, v in enumerate(m)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
