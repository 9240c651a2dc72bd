# Each row's median share of the adjacent FMA peak per environment or build, from kc_rounds.sh's JSON lines or from
# device-ab-gemm.sh's ab-gemm.jsonl; with NEW OLD, also each row's median over rounds of NEW's GFLOP/s over OLD's in
# the same round, its quartiles, and the rounds NEW was ahead.
# Usage: python3 kc_summary.py runs.jsonl [NEW OLD]
import collections, json, re, statistics as st, sys

shares = collections.defaultdict(lambda: collections.defaultdict(list))
rates = collections.defaultdict(lambda: collections.defaultdict(dict))
for line in open(sys.argv[1]):
    x = json.loads(line)
    if "build" in x:  # device-ab-gemm.sh's records: every bench-cpu line, its build and round added
        if x.get("what") != "gemm":
            continue
        x = {"v": x["build"], "r": x["round"], "row": x["shape"][:22] + " " + x["product"][:4],
             "adj": x["fractionOfAdjacentPeak"], "g": x["gflops"]}
    shares[x["row"]][x["v"]].append(x["adj"])
    # A round number seen again for the same build and row (device-ab-gemm.sh run twice into one file) is a round of
    # its own, paired with the other build's record of the same repetition.
    again = sum(1 for key in rates[x["row"]][x["v"]] if key[1] == x["r"])
    rates[x["row"]][x["v"]][(again, x["r"])] = x["g"]
natural = lambda v: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", v)]
vs = sorted({v for r in shares.values() for v in r}, key=natural)
pair = sys.argv[2:4]
print("row".ljust(30), *[v.ljust(12) for v in vs], *(["NEW/OLD median [q1 q3] ahead"] if pair else []))
for r, x in shares.items():
    cells = [f"{100 * st.median(x[v]):.0f}".ljust(12) if x[v] else "-".ljust(12) for v in vs]
    if pair:
        new, old = rates[r][pair[0]], rates[r][pair[1]]
        q = sorted(new[k] / old[k] for k in new if k in old)
        cells.append(f"{st.median(q):.3f} [{q[len(q) // 4]:.3f} {q[3 * len(q) // 4]:.3f}] {sum(v > 1 for v in q)}/{len(q)}")
    print(r.ljust(30), *cells)
