# Each row's median share of the adjacent FMA peak per environment, from kc_rounds.sh's JSON lines.
# Usage: python3 kc_summary.py runs.jsonl
import collections, json, re, statistics as st, sys

d = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    x = json.loads(line)
    d[x["row"]][x["v"]].append(x["adj"])
natural = lambda v: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", v)]
vs = sorted({v for r in d.values() for v in r}, key=natural)
print("row".ljust(30), *[v.ljust(12) for v in vs])
for r, x in d.items():
    print(r.ljust(30), *[f"{100 * st.median(x[v]):.0f}".ljust(12) if x[v] else "-".ljust(12) for v in vs])
