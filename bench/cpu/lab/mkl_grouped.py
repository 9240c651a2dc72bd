# MKL (torch.matmul, 1 thread unless given) on the lab3 shapes: E experts of M x N x K in the three layouts.
import sys, time, statistics, torch
M, threads, E, N, rounds = (int(x) for x in sys.argv[1:6]); K = N
torch.set_num_threads(threads)
x = torch.rand(E, M, K) - 0.5; w = torch.rand(E, N, K) - 0.5; g = torch.rand(E, M, N) - 0.5
def t(f):
    for _ in range(3): f()
    ts = []
    for _ in range(9):
        t0 = time.perf_counter(); f(); ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)
flop = 2.0 * E * M * N * K
for r in range(rounds):
    a = t(lambda: [x[e] @ w[e].T for e in range(E)])
    b = t(lambda: [g[e] @ w[e] for e in range(E)])
    c = t(lambda: [g[e].T @ x[e] for e in range(E)])
    print(f"MKL E{E} M{M} N=K{N} thr{threads} round {r}: ABt {a:.2f} ms {flop/a/1e6:.1f} GF | AB {b:.2f} ms {flop/b/1e6:.1f} | AtB {c:.2f} ms {flop/c/1e6:.1f}")
