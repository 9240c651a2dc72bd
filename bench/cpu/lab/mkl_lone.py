# MKL (torch.matmul) on one 256 x 512 x 512 product, three layouts, back-to-back, at several thread counts.
import sys, time, statistics, torch
maxt = int(sys.argv[1])
M, N, K = 256, 512, 512
x = torch.rand(M, K) - 0.5; w = torch.rand(N, K) - 0.5; g = torch.rand(M, N) - 0.5; at = torch.rand(K, M) - 0.5; bk = torch.rand(K, N) - 0.5
def t(f):
    for _ in range(20): f()
    ts = []
    for _ in range(51):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return 2.0 * M * N * K / statistics.median(ts) / 1e9
for n in sorted({maxt, 12, 8, 6, 4, 2, 1}, reverse=True):
    if n > maxt: continue
    torch.set_num_threads(n)
    print(f"MKL lone 256x512x512 threads {n:2}: ABt {t(lambda: x @ w.T):.0f} AB {t(lambda: g @ w):.0f} AtB {t(lambda: at.T @ bk):.0f} GFLOP/s")
