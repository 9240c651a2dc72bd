"""The PyTorch peer of MoeSharp on CPUs (issue 12), float32, one process, torch.set_num_threads(N).

  dispatch: torchtitan's dispatcher algorithm at EP 1 (bench/reference/torchtitan_dispatcher.py: histc, stable
            argsort, gather, score multiply and deterministic scatter_add), identity experts; the same shapes and
            byte count as `moe bench` (x read once + N routed rows written; the same again for combine).
  gemm:     torch.matmul on the shapes of `moe bench-cpu --what gemm` (grouped shapes: one matmul per expert).
  layer:    torchtitan's MoE layer with per-expert products (router gate + softmax + top-k with a load-balancing
            bias, the dispatcher above, SwiGLU experts as a for-loop of matmuls per expert as in
            torchtitan's _run_experts_for_loop, combine), forward + backward + torch.optim.AdamW step.

Prints one JSON line per measurement: median milliseconds over --iters after --warmup.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import torchtitan_dispatcher as tt  # noqa: E402


def median_ms(fn, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def routing(T: int, E: int, K: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    scores, ids = torch.topk(torch.rand(T, E, generator=g), K, dim=1)
    return scores.contiguous(), ids.contiguous()


def bench_dispatch(a) -> dict:
    T, D, E, K = a.tokens, a.dim, a.experts, a.top_k
    g = torch.Generator().manual_seed(a.seed)
    x = torch.randn(T, D, generator=g)
    scores, ids = routing(T, E, K, a.seed + 1)
    with torch.no_grad():
        state = {}

        def disp():
            state["d"] = tt.dispatch(x, scores, ids, num_experts=E, top_k=K)

        def comb():
            routed, _, meta = state["d"]
            tt.combine(routed, meta)

        disp()
        d_ms = median_ms(disp, a.warmup, a.iters)
        c_ms = median_ms(comb, a.warmup, a.iters)
    nbytes = (T * D + T * K * D) * 4
    return {"what": "dispatch", "peer": "torch", "threads": torch.get_num_threads(), "tokens": T, "dim": D,
            "experts": E, "topK": K, "dispatchMs": d_ms, "combineMs": c_ms,
            "dispatchCombineGBs": 2 * nbytes / ((d_ms + c_ms) / 1e3) / 1e9}


class MoE(torch.nn.Module):
    """torchtitan's MoE (router, GroupedExperts with the per-expert for-loop, no shared expert)."""

    def __init__(self, D: int, H: int, E: int, K: int):
        super().__init__()
        self.E, self.K = E, K
        self.gate = torch.nn.Linear(D, E, bias=False)
        std = 0.02
        self.w1 = torch.nn.Parameter(torch.randn(E, H, D) * std)
        self.w2 = torch.nn.Parameter(torch.randn(E, D, H) * std)
        self.w3 = torch.nn.Parameter(torch.randn(E, H, D) * std)
        self.register_buffer("expert_bias", torch.zeros(E))

    def forward(self, x):
        scores = F.softmax(self.gate(x).float(), dim=1)
        _, ids = torch.topk(scores + self.expert_bias, self.K, dim=1)
        top_scores = scores.gather(1, ids)
        routed, counts, meta = tt.dispatch(x, top_scores, ids, num_experts=self.E, top_k=self.K)
        outs = []
        for e, xe in enumerate(torch.split(routed, counts.tolist(), dim=0)):
            h = F.silu(torch.matmul(xe, self.w1[e].transpose(0, 1))) * torch.matmul(xe, self.w3[e].transpose(0, 1))
            outs.append(torch.matmul(h, self.w2[e].transpose(0, 1)))
        return tt.combine(torch.cat(outs, dim=0), meta)


def bench_layer(a) -> dict:
    T, D, H, E, K = a.tokens, a.dim, a.hidden, a.experts, a.top_k
    torch.manual_seed(a.seed)
    layer = MoE(D, H, E, K)
    opt = torch.optim.AdamW(layer.parameters(), lr=3e-3, weight_decay=0.0)
    x = torch.randn(T, D)
    grad_y = torch.randn(T, D) * (2.0 / T)

    def step():
        opt.zero_grad(set_to_none=True)
        y = layer(x)
        y.backward(grad_y)
        opt.step()

    ms = median_ms(step, a.warmup, a.iters)
    return {"what": "layer", "peer": "torch", "threads": torch.get_num_threads(), "tokens": T, "dim": D, "hidden": H,
            "experts": E, "topK": K, "stepMs": ms}


def bench_gemm(a) -> list:
    """x · Wᵀ, dy · W and dyᵀ · x (torch.matmul) on the shapes `moe bench-cpu --what gemm` times."""
    shapes = [("1024^3", 1024, 1024, 1024), ("expert T2048 D512 (256x512x512)", 256, 512, 512),
              ("expert T8192 D1024 (1024x1024x1024)", 1024, 1024, 1024)]
    out = []
    g = torch.Generator().manual_seed(3)
    for name, M, N, K in shapes:
        a_mk = torch.rand(M, K, generator=g) * 2 - 1
        b_nk = torch.rand(N, K, generator=g) * 2 - 1
        a_km = a_mk.reshape(K, M)
        b_kn = b_nk.reshape(K, N)
        for product, fn in (("A·Bᵀ (forward)", lambda: torch.matmul(a_mk, b_nk.t())),
                            ("A·B (input grad)", lambda: torch.matmul(a_mk, b_kn)),
                            ("Aᵀ·B (weight grad)", lambda: torch.matmul(a_km.t(), b_kn))):
            ms = median_ms(fn, a.warmup, a.iters)
            out.append({"what": "gemm", "peer": "torch", "threads": torch.get_num_threads(), "shape": name,
                        "product": product, "ms": ms, "gflops": 2.0 * M * N * K / (ms / 1e3) / 1e9})
    # The layer's grouped products as torchtitan's _run_experts_for_loop runs them: one matmul per expert.
    for name, M, N, K, G in (("16 experts T2048 D512 (16 x 256x512x512)", 4096, 512, 512, 16),
                             ("16 experts T8192 D1024 (16 x 1024x1024x1024)", 16384, 1024, 1024, 16)):
        r = M // G
        x = torch.rand(M, K, generator=g) * 2 - 1
        w = torch.rand(G, N, K, generator=g) * 2 - 1
        dy = torch.rand(M, N, generator=g) * 2 - 1
        xs, dys = torch.split(x, r), torch.split(dy, r)
        for product, fn in (("A·Bᵀ (forward)", lambda: [torch.matmul(xs[e], w[e].t()) for e in range(G)]),
                            ("A·B (input grad)", lambda: [torch.matmul(dys[e], w[e]) for e in range(G)]),
                            ("Aᵀ·B (weight grad)", lambda: [torch.matmul(dys[e].t(), xs[e]) for e in range(G)])):
            ms = median_ms(fn, a.warmup, a.iters)
            out.append({"what": "gemm", "peer": "torch", "threads": torch.get_num_threads(), "shape": name,
                        "product": product, "ms": ms, "gflops": 2.0 * M * N * K / (ms / 1e3) / 1e9})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["dispatch", "layer", "gemm"])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.threads < 1:
        print(f"torch_peer.py: --threads {a.threads} must be at least 1", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    results = {"dispatch": lambda: [bench_dispatch(a)], "layer": lambda: [bench_layer(a)], "gemm": lambda: bench_gemm(a)}[a.what]()
    for result in results:
        result["torch"] = torch.__version__
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
