# MKL's side of CoreLab's big form: one SIZE^3 product (default 1024) in three layouts on THREADS threads, 5 rounds,
# each layout's median of 15 calls after 10 per round (rotating order); medians over the rounds.
import os, statistics, sys, time, torch
threads = int(sys.argv[1]); size = int(os.environ.get("LAB_SIZE", "1024"))
M, N, K = (int(os.environ.get(v, size)) for v in ("LAB_M", "LAB_N", "LAB_K"))
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(3)
x = torch.rand(M, K, generator=g) * 2 - 1; w = torch.rand(N, K, generator=g) * 2 - 1
wk = torch.rand(K, N, generator=g) * 2 - 1; at = torch.rand(K, M, generator=g) * 2 - 1
flop = 2.0 * M * N * K
configs = [("ABt", lambda: x @ w.T), ("AB", lambda: x @ wk), ("AtB", lambda: at.T @ wk)]
res = [[] for _ in configs]
def med(f):
    for _ in range(10): f()
    ts = []
    for _ in range(15):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
for r in range(5):
    for q in range(3):
        i = (q + r) % 3
        res[i].append(flop / med(configs[i][1]) / 1e9)
out = " ".join(f"| {n} {sorted(v)[2]:.0f} [{min(v):.0f}-{max(v):.0f}]" for (n, _), v in zip(configs, res))
print(f"big {M}x{N}x{K} MKL        thr {threads}: {out}")
