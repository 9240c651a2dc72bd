import sys, time, statistics, torch
torch.set_num_threads(int(sys.argv[1]))
a = torch.rand(1024, 1024) * 2 - 1; b = torch.rand(1024, 1024) * 2 - 1
for _ in range(20): a @ b.T
ts = []
for _ in range(21):
    t = time.perf_counter(); a @ b.T; ts.append(time.perf_counter() - t)
print(f"MKL 1024^3 A·Bᵀ threads {sys.argv[1]}: {2 * 1024**3 / statistics.median(ts) / 1e9:.0f} GFLOP/s")
