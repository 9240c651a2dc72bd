# Stop 38: each PipeLab variant's rate over lib12x32's in the same round, medians over the rounds where lib12x32
# read under 85 % of the FMA probe (slow) and the others. Usage: pipe_paired.py RAW LABEL...
import re, sys, collections, statistics
# per round: ratio of each variant to lib12x32 measured in the same round; split by lib's share of P0 (slow < 85)
for label_filter in sys.argv[2:]:
    slow = collections.defaultdict(list); fast = collections.defaultdict(list)
    for line in open(sys.argv[1]):
        m = re.match(r"(\S+) t\S+ round (\d+) P0 (\d+): (.*)", line)
        if not m or m.group(1) != label_filter: continue
        d = {n: int(v) for n, v in re.findall(r"(\S+) (\d+)%", m.group(4))}
        lib = d["lib12x32"]
        if lib > 110: continue
        tgt = slow if lib < 85 else fast
        for n, v in d.items():
            tgt[n].append(v / lib)
    def med(x): return statistics.median(x) if x else float('nan')
    print(label_filter, "slow rounds", len(slow["lib12x32"]), {n: round(med(x), 3) for n, x in slow.items()}, "| fast", len(fast["lib12x32"]), {n: round(med(x), 3) for n, x in fast.items()})
