# MKL's side of CoreLab's ceiling form: per shape (1024^3, 256 x 512 x 512; A·Bᵀ) the THREADS equal products as
# torch.matmul one after another on THREADS threads (the peer's grouped layer), the lone product on THREADS threads,
# and (with --one-per-thread, run with OMP_NUM_THREADS=MKL_NUM_THREADS=1) one product per Python thread, all started
# together: MKL's one-thread kernel with every core busy. Medians over ROUNDS interleaved rounds.
import statistics, sys, threading, time, torch
threads = int(sys.argv[1]); one_per_thread = "--one-per-thread" in sys.argv
rounds = 6
if not one_per_thread:
    torch.set_num_threads(threads)
def median_time(f, warm, reps):
    for _ in range(warm): f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
for m, n, k in [(1024, 1024, 1024), (256, 512, 512)]:
    g = torch.Generator().manual_seed(5)
    a = [torch.rand(m, k, generator=g) * 2 - 1 for _ in range(threads)]
    b = [torch.rand(n, k, generator=g) * 2 - 1 for _ in range(threads)]
    one = 2.0 * m * n * k
    if one_per_thread:
        start = threading.Barrier(threads + 1); done = threading.Barrier(threads + 1)
        stop = [False]
        def worker(t):
            while True:
                start.wait()
                if stop[0]: return
                torch.matmul(a[t], b[t].T)
                done.wait()
        ws = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for w in ws: w.start()
        def all_once():
            start.wait(); done.wait()
        res = [threads * one / median_time(all_once, 3, 9 if m == 1024 else 31) / 1e9 for _ in range(rounds)]
        stop[0] = True; start.wait()
        for w in ws: w.join()
        r = sorted(res)
        print(f"MKL {m}x{n}x{k} A·Bᵀ one per thread x{threads}: median {r[len(r)//2]:.0f} [{r[0]:.0f}-{r[-1]:.0f}] GFLOP/s")
        continue
    grouped = lambda: [torch.matmul(a[t], b[t].T) for t in range(threads)]
    lone = lambda: torch.matmul(a[0], b[0].T)
    rg, rl = [], []
    for _ in range(rounds):
        rg.append(threads * one / median_time(grouped, 3, 7) / 1e9)
        rl.append(one / median_time(lone, 5, 15) / 1e9)
    for name, r in (("grouped loop", sorted(rg)), ("lone", sorted(rl))):
        print(f"MKL {m}x{n}x{k} A·Bᵀ {name} threads {threads}: median {r[len(r)//2]:.0f} [{r[0]:.0f}-{r[-1]:.0f}] GFLOP/s")
