# Summarises alternating `moe bench-cpu --what gemm --json` runs of several builds: each row's GFLOP/s and share of
# its adjacent FMA peak per round, and the medians per build. Usage: ab_rows.py OUTDIR (files BUILD-rN.jsonl)
import glob, json, os, re, statistics as st, sys
rows = {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*-r*.jsonl"))):
    build, rnd = re.match(r"(.+)-r(\d+)\.jsonl", os.path.basename(f)).groups()
    for line in open(f):
        try: d = json.loads(line)
        except Exception: continue
        if d.get("what") != "gemm": continue
        key = (d["shape"], d["product"].split(" ")[0])
        rows.setdefault(key, {}).setdefault(build, []).append((int(rnd), d["gflops"], d["fractionOfAdjacentPeak"]))
builds = sorted({b for r in rows.values() for b in r})
print("| row | " + " | ".join(f"{b}: GFLOP/s per round; median share of adjacent FMA peak" for b in builds) + " |")
for key, per in rows.items():
    cells = []
    for b in builds:
        xs = sorted(per.get(b, []))
        gflops = " / ".join(f"{g:.0f}" for _, g, _ in xs)
        shares = " ".join(f"{100 * s:.0f}" for _, _, s in xs)
        cells.append(f"{gflops}; {100 * st.median(s for _, _, s in xs):.0f} % [{shares}]")
    print(f"| {key[0]} {key[1]} | " + " | ".join(cells) + " |")
