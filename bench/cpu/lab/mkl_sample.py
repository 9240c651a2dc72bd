"""Stop 38: samples where PyTorch's CPU matmul (MKL) spends its time: ptrace the worker's thread, read RIP, dump the hot code.
Usage: python3 mkl_sample.py OUTDIR nt|nn|tn (one 256 x 512 x 512 product on one thread; spin: no torch)."""
import ctypes, os, subprocess, sys, time, collections, json
out = sys.argv[1]
layout = sys.argv[2] if len(sys.argv) > 2 else "nt"
worker = r'''
import time, sys, os
if sys.argv[1] != "spin": import torch; torch.set_num_threads(1)

M, N, K = 256, 512, 512
if sys.argv[1] == "spin":
    print(os.getpid(), flush=True); t=time.time()+8
    while time.time() < t: pass
    sys.exit(0)
a = torch.randn(M, K); b = torch.randn(N, K); bk = torch.randn(K, N); at = torch.randn(K, M)
c = torch.empty(M, N)
lay = sys.argv[1]
print(os.getpid(), flush=True)
t_end = time.time() + 8
n = 0
while time.time() < t_end:
    if lay == "nt": torch.matmul(a, b.t(), out=c)
    elif lay == "nn": torch.matmul(a, bk, out=c)
    else: torch.matmul(at.t(), bk, out=c)
    n += 1
print("calls", n, flush=True)
'''
p = subprocess.Popen([sys.executable, "-c", worker, layout], stdout=subprocess.PIPE, text=True)
pid = int(p.stdout.readline())
time.sleep(2.0)
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
regs = (ctypes.c_ulong * 27)()
rips = collections.Counter()
fails = 0
for i in range(400):
    if libc.ptrace(16, pid, None, None) != 0:
        fails += 1; print("attach failed errno", ctypes.get_errno()); break
    os.waitpid(pid, 0x40000000)
    if libc.ptrace(12, pid, None, ctypes.byref(regs)) == 0:
        rips[regs[16]] += 1
    libc.ptrace(17, pid, None, None)
    time.sleep(0.01)
maps = open(f"/proc/{pid}/maps").read().splitlines()
def where(addr):
    for line in maps:
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if lo <= addr < hi:
            return parts[-1] if len(parts) >= 6 else "?", addr - lo + int(parts[2], 16)
    return "?", 0
by_page = collections.Counter()
for rip, n in rips.items():
    by_page[rip & ~0xfff] += n
with open(os.path.join(out, f"mkl-{layout}.txt"), "w") as f:
    f.write(f"samples {sum(rips.values())} fails {fails}\n")
    for rip, n in rips.most_common(60):
        lib, off = where(rip)
        f.write(f"{rip:#x} {n} {lib} {off:#x}\n")
    mem = open(f"/proc/{pid}/mem", "rb")
    for page, n in by_page.most_common(3):
        lo = page - 0x1000
        data = b""
        for q in range(3):
            try:
                mem.seek(lo + q * 0x1000); data += mem.read(0x1000)
            except OSError:
                data += b"\xcc" * 0x1000
        with open(os.path.join(out, f"mkl-{layout}-{lo:x}.bin"), "wb") as g:
            g.write(data)
        f.write(f"page {page:#x} {n} dumped from {lo:#x}\n")
p.wait()
