"""Grouped GEMM throughput in PyTorch (bf16), for comparison with MoeSharp's cuBLAS experts.

    python3 bench/reference/gemm_reference.py [--shape deepseek-up,...] [--jsonl FILE]

For each shape: x [rows, k] times per-expert weights W [groups, n, k] (nn.Linear layout,
out = x_g @ W_g^T), rows split into `groups` contiguous groups, against one dense matmul of
the same FLOPs (x [rows, k] @ Wd[n, k]^T). Implementations:
  torch-matmul-loop  split + per-expert torch.matmul + cat (torchtitan's for-loop experts)
  torch-grouped-mm   torch._grouped_mm(x, W.transpose(-2, -1), offs=int32 cumsum), as torchtitan
  torch-dense        torch.matmul of the same FLOPs
FLOPs = 2*rows*n*k. CUDA events, warm-up, median of --iters. One GPU.

Shapes: rows = tokens/rank * top_k of the dispatch presets (rows a rank receives on average),
groups = local experts at EP = 4 (E/4); up = fused w1|w3 (n = 2H, k = D), down = w2 (n = D, k = H).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys

import torch

SHAPES = {  # rows, groups, n, k
    "deepseek-up": (4096 * 8, 256 // 4, 2 * 2048, 7168),
    "deepseek-down": (4096 * 8, 256 // 4, 7168, 2048),
    "qwen3-up": (8192 * 8, 128 // 4, 2 * 768, 2048),
    "qwen3-down": (8192 * 8, 128 // 4, 2048, 768),
}
SCHEMA = "moesharp-bench/1"


def group_sizes(rows: int, groups: int, skew: float) -> list:
    """Balanced (skew 0) or alternating mean*(1 -/+ skew), rounded to multiples of 16; the
    last group takes the remainder. Deterministic so another implementation can match it."""
    mean = rows / groups
    sizes = []
    for g in range(groups - 1):
        s = mean * (1 + skew * (1 if g % 2 else -1))
        sizes.append(max(0, int(s) // 16 * 16))
    sizes.append(rows - sum(sizes))
    if sizes[-1] < 0:
        raise ValueError("skew too large for these rows/groups")
    return sizes


def time_ms(fn, warmup: int, iters: int) -> list:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b))
    return out


def stats(ms: list) -> dict:
    s = sorted(ms)
    p90 = s[min(len(s) - 1, int(math.ceil(0.9 * len(s))) - 1)]
    return {"ms": round(statistics.median(s), 4), "ms_min": round(s[0], 4),
            "ms_p90": round(p90, 4), "iters": len(s)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default=",".join(SHAPES), help="comma list of " + ",".join(SHAPES))
    ap.add_argument("--skew", type=float, default=0.0, help="group-size imbalance, 0 = balanced")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--jsonl", default=None)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: CUDA is not available to torch", file=sys.stderr)
        return 1
    dev = torch.device("cuda", 0)
    card = torch.cuda.get_device_name(dev)
    dtype = torch.bfloat16
    grouped_mm = getattr(torch, "_grouped_mm", None)
    records, status = [], 0
    print(f"# {card}  torch {torch.__version__}  torch._grouped_mm "
          f"{'available' if grouped_mm else 'MISSING'}", flush=True)

    def emit(rec):
        rec = {"schema": SCHEMA, "kind": "gemm", "card": card, "gpus": 1,
               "torch": torch.__version__, **rec}
        records.append(rec)
        line = json.dumps(rec)
        print(line, flush=True)
        if args.jsonl:
            with open(args.jsonl, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    for name in [s for s in args.shape.split(",") if s]:
        if name not in SHAPES:
            print(f"error: unknown shape {name!r}", file=sys.stderr)
            return 2
        rows, groups, n, k = SHAPES[name]
        sizes = group_sizes(rows, groups, args.skew)
        flops = 2 * rows * n * k
        base = {"preset": name, "rows": rows, "groups": groups, "n": n, "k": k, "dtype": "bf16",
                "group_sizes": "balanced" if args.skew == 0 else f"skew={args.skew}", "flops": flops}
        g = torch.Generator(device=dev)
        g.manual_seed(1234)
        x = (torch.randn(rows, k, generator=g, device=dev) * 0.1).to(dtype)
        w = (torch.randn(groups, n, k, generator=g, device=dev) * 0.02).to(dtype)
        wd = (torch.randn(n, k, generator=g, device=dev) * 0.02).to(dtype)
        offs = torch.tensor(sizes, device=dev, dtype=torch.int32).cumsum(0, dtype=torch.int32)

        def loop():
            parts = torch.split(x, sizes, dim=0)
            return torch.cat([torch.matmul(parts[i], w[i].transpose(-2, -1)) for i in range(groups)])

        impls = [("torch-dense", lambda: torch.matmul(x, wd.transpose(-2, -1))),
                 ("torch-matmul-loop", loop)]
        if grouped_mm is not None:
            impls.append(("torch-grouped-mm", lambda: grouped_mm(x, w.transpose(-2, -1), offs=offs)))
        dense_tflops = None
        for impl, fn in impls:
            extra = {}
            try:
                if impl == "torch-grouped-mm":  # numerics once against the loop
                    ref, got = loop().float(), fn().float()
                    extra["max_rel_diff_vs_loop"] = round(
                        ((got - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item(), 6)
                st = stats(time_ms(fn, args.warmup, args.iters))
            except Exception as e:  # noqa: BLE001  (e.g. grouped_mm alignment rules)
                status = 1
                emit({**base, "impl": impl, "error": f"{type(e).__name__}: {e}"[:300]})
                continue
            tflops = round(flops / st["ms"] / 1e9, 1)
            if impl == "torch-dense":
                dense_tflops = tflops
            rec = {**base, "impl": impl, **st, "tflops": tflops, **extra}
            if dense_tflops and impl != "torch-dense":
                rec["ratio_vs_dense"] = round(tflops / dense_tflops, 3)
            emit(rec)
        del x, w, wd
        torch.cuda.empty_cache()

    print(f"\n{'shape':<14} {'impl':<18} {'ms':>8} {'TFLOP/s':>8} {'vs dense':>8}")
    for r in records:
        print(f"{r['preset']:<14} {r['impl']:<18} {r.get('ms', 'ERR'):>8} "
              f"{r.get('tflops', ''):>8} {r.get('ratio_vs_dense', ''):>8}  {r.get('error', '')}")
    return status


if __name__ == "__main__":
    sys.exit(main())
