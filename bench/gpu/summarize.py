"""Turns results-*.jsonl from bench/gpu/run-h100.sh into the tables of bench/RESULTS.md.

    python3 bench/gpu/summarize.py results-2gpu.jsonl results-4gpu.jsonl   # update bench/RESULTS.md
    python3 bench/gpu/summarize.py --print-only results-2gpu.jsonl         # print, write nothing
    python3 bench/gpu/summarize.py --ingest RES.jsonl --set impl=moesharp-cuda --set gpus=2 < out.txt

Plain python3, no torch. The tables go between the markers <!-- results:begin --> and
<!-- results:end --> of the Markdown file (appended with markers if they are missing).

Targets (issue "On GPUs: a CUDA backend with NCCL exchanges and cuBLAS experts"):
  speedup   dispatch_combine: torch-reference ms / moesharp ms >= 2.0 at 2 and 4 GPUs
  exchange  moesharp exchange GB/s / nccl_all_to_all GB/s >= 0.80 (equal bytes)
  local     moesharp local_step and local GB/s / copy GB/s >= 0.70
  gemm      moesharp gemm TFLOP/s / torch-dense TFLOP/s >= 0.70 (same shape)
A measurement is "ours" when its impl does not start with torch- or nccl-.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
LOCAL_STEPS = ("gather", "permute", "unpermute", "combine")
GOALS = {"speedup": 2.0, "exchange": 0.80, "local": 0.70, "gemm": 0.70}
TARGET_GPUS = (2, 4)


BAD = {}  # parse_record's answer for a line that starts like JSON but is not an object


def parse_record(line):
    """None for a line that is not a JSON line, BAD for a malformed one, else the object."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        r = json.loads(line)
    except json.JSONDecodeError:
        return BAD
    return r if isinstance(r, dict) else BAD


def ours(r) -> bool:
    impl = str(r.get("impl", ""))
    return not (impl.startswith("torch-") or impl.startswith("nccl-"))


def load(paths):
    recs, bad = [], 0
    for path in paths:
        m = re.search(r"results-(\d+)gpu", os.path.basename(path))
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = parse_record(line)
                if r is None:
                    continue
                if r is BAD or "kind" not in r:
                    bad += 1
                    continue
                r["_file"] = os.path.basename(path)
                r["_run_gpus"] = int(m.group(1)) if m else r.get("gpus")
                recs.append(r)
    if bad:
        print(f"warning: {bad} line(s) skipped (not JSON objects with a 'kind')", file=sys.stderr)
    return recs


def num(r, key):
    v = r.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def bw(r):
    """GB/s: the record's gb_per_s, else bytes/ms."""
    v = num(r, "gb_per_s")
    if v is None and num(r, "bytes") and num(r, "ms"):
        v = num(r, "bytes") / num(r, "ms") / 1e6
    return v


def find(recs, **kv):
    """First record matching kv; a missing or empty card on either side matches any card."""
    def same(r, k, v):
        if k == "card" and (not v or not r.get(k)):
            return True
        return r.get(k) == v
    for r in recs:
        if all(same(r, k, v) for k, v in kv.items()):
            return r
    return None


def fmt(v, nd=2):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def status(ratio, goal, judged=True):
    if ratio is None:
        return "no data"
    if not judged:
        return "info"
    return "PASS" if ratio >= goal else "MISS"


def target_rows(recs):
    """Rows: (target, card, gpus, preset, what, ours, baseline, ratio, goal, status)."""
    rows = []
    theirs = [r for r in recs if not ours(r)]
    mine = [r for r in recs if ours(r)]

    # 1. dispatch + combine speedup over the PyTorch reference
    for ref in theirs:
        if ref["kind"] != "dispatch_combine":
            continue
        card, g, p = ref.get("card"), ref.get("gpus"), ref.get("preset")
        m = find(mine, kind="dispatch_combine", card=card, gpus=g, preset=p)
        ratio = (num(ref, "ms") / num(m, "ms")) if m and num(m, "ms") else None
        rows.append(("dispatch+combine speedup", card, g, p, "ms",
                     num(m, "ms") if m else None, num(ref, "ms"), ratio, GOALS["speedup"],
                     status(ratio, GOALS["speedup"], g in TARGET_GPUS)))

    # 2. exchanges vs raw NCCL all-to-all of equal bytes
    for raw in theirs:
        if raw["kind"] != "nccl_all_to_all":
            continue
        card, g, p = raw.get("card"), raw.get("gpus"), raw.get("preset")
        for who, pool in (("moesharp", mine), ("torch-reference", theirs)):
            m = find(pool, kind="exchange", card=card, gpus=g, preset=p)
            if who == "torch-reference" and m is None:
                continue
            ratio = (bw(m) / bw(raw)) if m and bw(m) and bw(raw) else None
            label = "exchange / raw NCCL" + ("" if who == "moesharp" else " (reference, info)")
            rows.append((label, card, g, p, "GB/s", bw(m) if m else None, bw(raw), ratio,
                         GOALS["exchange"], status(ratio, GOALS["exchange"], who == "moesharp")))

    # 3. local kernels vs copy bandwidth (same card, preset; copy of the same GPU count if any)
    for m in mine:
        if m["kind"] not in ("local", "local_step"):
            continue
        if m["kind"] == "local_step" and m.get("step") not in LOCAL_STEPS:
            continue
        card, g, p = m.get("card"), m.get("gpus"), m.get("preset")
        cp = find(theirs, kind="copy", card=card, gpus=g, preset=p) or \
            find(theirs, kind="copy", card=card, preset=p)
        ratio = (bw(m) / bw(cp)) if cp and bw(m) and bw(cp) else None
        what = "local total" if m["kind"] == "local" else f"local {m.get('step')}"
        rows.append((f"{what} / copy", card, g, p, "GB/s", bw(m), bw(cp) if cp else None, ratio,
                     GOALS["local"], status(ratio, GOALS["local"])))

    for t in theirs:  # the reference's local total, for comparison only
        if t["kind"] == "local":
            cp = find(theirs, kind="copy", card=t.get("card"), gpus=t.get("gpus"), preset=t.get("preset"))
            ratio = (bw(t) / bw(cp)) if cp and bw(t) and bw(cp) else None
            rows.append(("local total / copy (reference, info)", t.get("card"), t.get("gpus"),
                         t.get("preset"), "GB/s", bw(t), bw(cp) if cp else None, ratio,
                         GOALS["local"], status(ratio, GOALS["local"], False)))

    # 4. grouped GEMM vs dense GEMM of the same FLOPs: against PyTorch's dense matmul and against our own dense
    #    cuBLAS call (impl ending in -dense, which is a baseline, not a grouped GEMM)
    for m in mine:
        if m["kind"] != "gemm" or str(m.get("impl", "")).endswith("-dense"):
            continue
        card, p = m.get("card"), m.get("preset")
        for label, d in (("grouped GEMM / torch dense", find(theirs, kind="gemm", impl="torch-dense", card=card, preset=p)),
                         ("grouped GEMM / own cuBLAS dense", find(mine, kind="gemm", impl=str(m.get("impl")) + "-dense", card=card, preset=p))):
            ratio = (num(m, "tflops") / num(d, "tflops")) if d and num(m, "tflops") and num(d, "tflops") else None
            rows.append((label, card, m.get("gpus"), p, "TFLOP/s", num(m, "tflops"),
                         num(d, "tflops") if d else None, ratio, GOALS["gemm"], status(ratio, GOALS["gemm"])))
    for t in theirs:  # the PyTorch grouped GEMMs, for comparison only
        if t["kind"] == "gemm" and t.get("impl") != "torch-dense" and num(t, "tflops"):
            d = find(theirs, kind="gemm", impl="torch-dense", card=t.get("card"), preset=t.get("preset"))
            ratio = (num(t, "tflops") / num(d, "tflops")) if d and num(d, "tflops") else None
            rows.append((f"{t['impl']} / dense (info)", t.get("card"), t.get("gpus"), t.get("preset"),
                         "TFLOP/s", num(t, "tflops"), num(d, "tflops") if d else None, ratio,
                         GOALS["gemm"], status(ratio, GOALS["gemm"], False)))
    return rows


def render(recs) -> str:
    out = []
    runs = sorted({(r["_file"], r.get("_run_gpus")) for r in recs}, key=lambda x: str(x[0]))
    cards = sorted({str(r.get("card")) for r in recs})
    out.append(f"Cards: {', '.join(cards)}. Runs: " + "; ".join(
        f"`bash bench/gpu/run-h100.sh {g}` → `{f}`" for f, g in runs) + ".")
    versions = sorted({(str(r.get("torch")), str(r.get("nccl"))) for r in recs if r.get("torch")})
    if versions:
        out.append("PyTorch / NCCL: " + "; ".join(f"{t} / {n}" for t, n in versions) + ".")
    out.append("")
    out.append("### Targets")
    out.append("")
    out.append("| target | card | GPUs | preset | unit | MoeSharp / measured | baseline | ratio | goal | status |")
    out.append("| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |")
    for t, card, g, p, unit, a, b, ratio, goal, st in target_rows(recs):
        goal_s = f"≥ {goal:.2f}" + ("×" if t.startswith("dispatch") else "")
        out.append(f"| {t} | {card} | {g} | {p} | {unit} | {fmt(a)} | {fmt(b)} | {fmt(ratio, 3)} | {goal_s} | **{st}** |")
    out.append("")
    out.append("### All measurements (medians)")
    out.append("")
    out.append("| card | GPUs | preset | kind | impl | step | ms | GB/s | TFLOP/s | note |")
    out.append("| --- | ---: | --- | --- | --- | --- | ---: | ---: | ---: | --- |")
    key = lambda r: (str(r.get("card")), r.get("gpus") or 0, str(r.get("preset")), str(r["kind"]), str(r.get("impl")))
    for r in sorted(recs, key=key):
        note = r.get("error", "")
        if r["kind"] == "check":
            note = f"sp={r.get('sp')} score_before={r.get('score_before_experts')} ok={r.get('ok')} exact={r.get('exact')}"
        elif r["kind"] == "dispatch_combine" and isinstance(r.get("phases"), dict):
            note = " ".join(f"{k}={v}" for k, v in r["phases"].items())
        out.append(f"| {r.get('card')} | {r.get('gpus')} | {r.get('preset')} | {r['kind']} | {r.get('impl')} | "
                   f"{r.get('step', '')} | {fmt(num(r, 'ms'), 3)} | {fmt(bw(r) if r['kind'] != 'gemm' else None)} | "
                   f"{fmt(num(r, 'tflops'), 1)} | {note} |")
    return "\n".join(out) + "\n"


def write_md(md_path: str, body: str):
    text = open(md_path, encoding="utf-8").read() if os.path.exists(md_path) else "# Results\n"
    block = f"{BEGIN}\n{body}{END}"
    if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(text)


def ingest(dest: str, sets: list) -> int:
    """stdin lines that are JSON objects -> dest, with --set key=value added where missing."""
    defaults = {}
    for s in sets:
        k, _, v = s.partition("=")
        if v != "":  # an empty value (e.g. no card name found) sets nothing
            defaults[k] = int(v) if v.isdigit() else v
    n = bad = 0
    with open(dest, "a", encoding="utf-8") as f:
        for line in sys.stdin:
            r = parse_record(line)
            if r is None:
                continue
            if r is BAD:
                bad += 1
                continue
            for k, v in defaults.items():
                if r.get(k) in (None, ""):
                    r[k] = v
            r.setdefault("schema", "moesharp-bench/1")
            f.write(json.dumps(r) + "\n")
            n += 1
    print(f"ingest: {n} JSON line(s) taken into {dest}" + (f", {bad} unreadable" if bad else ""))
    return 0


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="results-*.jsonl")
    ap.add_argument("--md", default=os.path.join(here, "..", "RESULTS.md"))
    ap.add_argument("--print-only", action="store_true")
    ap.add_argument("--ingest", metavar="DEST", help="append stdin's JSON lines to DEST")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args(argv)
    if a.ingest:
        return ingest(a.ingest, a.set)
    if not a.files:
        ap.error("no results files given")
    missing = [p for p in a.files if not os.path.exists(p)]
    if missing:
        print(f"error: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    recs = load(a.files)
    if not recs:
        print("error: no measurements in the given files", file=sys.stderr)
        return 1
    body = render(recs)
    print(body)
    if not a.print_only:
        write_md(os.path.normpath(a.md), body)
        print(f"updated {os.path.normpath(a.md)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
