#!/usr/bin/env python3
"""The peer of `moe bench --layer`: one MoE layer step with torchtitan's MoE semantics on one GPU.

torchtitan's `MoE` (models/moe): softmax router (a bias-free linear gate, scores in float32), top-k, local dispatch
(stable argsort of the expert ids, rows gathered in expert order, each expert's rows padded to a multiple of 16 through
a permutation index with a zero row, as `generate_permute_indices` lays them out), `GroupedExperts` through
`torch._grouped_mm` in bfloat16 (SwiGLU: silu(x w1^T) * (x w3^T), then w2), the score multiplied after the experts
(in float32), a deterministic `scatter_add` combine into zeros, and a fused AdamW on float32 master weights, which are
cast to bfloat16 in every forward (FSDP's mixed precision: bf16 compute, fp32 parameters and optimizer).

Timed with CUDA events: forward, backward, optimizer step and the whole step; medians. One JSON line per
measurement (schema moesharp-bench/1, kind `layer`), then a table.

Usage: python3 bench/reference/torchtitan_moe_layer.py --preset qwen3,small [--iters 20] [--warmup 5] [--jsonl FILE]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys

import torch
import torch.nn.functional as F

SCHEMA = "moesharp-bench/1"
ALIGN = 16
PRESETS = {
    "qwen3": dict(tokens=16384, dim=2048, hidden=768, experts=128, top_k=8),
    "small": dict(tokens=8192, dim=1024, hidden=1024, experts=16, top_k=2),
}


@contextlib.contextmanager
def deterministic():
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old)


class MoeLayer(torch.nn.Module):
    """torchtitan's MoE without shared experts or load balancing, on one rank (EP 1)."""

    def __init__(self, dim, hidden, experts, top_k, device):
        super().__init__()
        self.E, self.K = experts, top_k
        g = torch.Generator(device="cpu").manual_seed(0)
        def uniform(*shape, fan_in):
            return torch.nn.Parameter(((torch.rand(*shape, generator=g) * 2 - 1) / fan_in ** 0.5).to(device))
        self.gate = uniform(experts, dim, fan_in=dim)
        self.w1 = uniform(experts, hidden, dim, fan_in=dim)
        self.w2 = uniform(experts, dim, hidden, fan_in=hidden)
        self.w3 = uniform(experts, hidden, dim, fan_in=dim)

    def forward(self, x):
        T, D = x.shape
        E, K = self.E, self.K
        # Mixed precision: bfloat16 copies of the float32 master weights, every step.
        gate, w1, w2, w3 = (w.to(torch.bfloat16) for w in (self.gate, self.w1, self.w2, self.w3))
        # Router (TokenChoiceTopKRouter): softmax in float32, top-k, no route norm, scale 1.
        scores = F.softmax(F.linear(x, gate).to(torch.float32), dim=1)
        top_scores, ids = torch.topk(scores, k=K, dim=1)
        counts = torch.histc(ids.view(-1).to(torch.float32), bins=E, min=0, max=E).to(torch.int64)
        # Reorderer: expert-major order of the T*K entries.
        order = torch.argsort(ids.view(-1), stable=True)
        scores_sorted = top_scores.view(-1)[order]
        token_idx = order // K
        routed = x[token_idx]
        # generate_permute_indices: each expert's rows padded to a multiple of ALIGN (at least ALIGN), pad rows read a zero row.
        N = routed.shape[0]
        padded = torch.clamp_min((counts + ALIGN - 1) // ALIGN * ALIGN, ALIGN)
        padded_end = torch.cumsum(padded, 0)
        start = torch.cumsum(counts, 0) - counts
        expert_of = ids.view(-1)[order]
        dest = (padded_end - padded)[expert_of] + torch.arange(N, device=x.device) - start[expert_of]
        max_len = N + E * ALIGN
        permuted = torch.full((max_len,), N, dtype=torch.int64, device=x.device)
        permuted[dest] = torch.arange(N, device=x.device)
        xp = torch.vstack((routed, routed.new_zeros((1, D))))[permuted]
        offs = padded_end.to(torch.int32)
        # GroupedExperts (_run_experts_grouped_mm).
        h = F.silu(torch._grouped_mm(xp, w1.transpose(-2, -1), offs=offs))
        h = h * torch._grouped_mm(xp, w3.transpose(-2, -1), offs=offs)
        yp = torch._grouped_mm(h, w2.transpose(-2, -1), offs=offs).type_as(xp)
        y = yp.new_empty((N + 1, D))
        y[permuted] = yp
        y = y[:-1]
        # Score after the experts, then the deterministic scatter_add combine.
        y = (y.to(torch.float32) * scores_sorted.reshape(-1, 1)).to(x.dtype)
        out = torch.zeros_like(x)
        with deterministic():
            out = out.scatter_add(0, token_idx.reshape(-1, 1).expand(-1, D), y)
        return out


def check(dev) -> float:
    """The layer's output at a small shape against a per-expert loop in float32 on the same bf16 weights: rel. error."""
    T, D, H, E, K = 64, 64, 32, 4, 2
    layer = MoeLayer(D, H, E, K, dev)
    x = torch.randn(T, D, device=dev).to(torch.bfloat16)
    out = layer(x).float()
    gate, w1, w2, w3 = (w.to(torch.bfloat16).float() for w in (layer.gate, layer.w1, layer.w2, layer.w3))
    xf = x.float()
    scores = F.softmax(xf @ gate.t(), dim=1)
    top, ids = torch.topk(scores, K, dim=1)
    ref = torch.zeros(T, D, device=dev)
    for t in range(T):
        for j in range(K):
            e = ids[t, j]
            h = F.silu(xf[t] @ w1[e].t()) * (xf[t] @ w3[e].t())
            ref[t] += top[t, j] * (h @ w2[e].t())
    return float((out - ref).norm() / ref.norm())


def median(values):
    return statistics.median(values)


def run(preset: str, args, card: str, jsonl):
    shape = PRESETS[preset]
    T, D, H, E, K = (shape[k] for k in ("tokens", "dim", "hidden", "experts", "top_k"))
    dev = torch.device("cuda")
    torch.manual_seed(1234)
    layer = MoeLayer(D, H, E, K, dev)
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-4, weight_decay=0.0, fused=True)
    # Inputs rotate among a few batches, as in moe bench --layer (the routing changes from step to step).
    xs = [torch.randn(T, D, device=dev).to(torch.bfloat16) for _ in range(4)]
    grad_out = torch.randn(T, D, device=dev).to(torch.bfloat16)

    times = {"forward": [], "backward": [], "optimizer": [], "step": []}
    for i in range(args.warmup + args.iters):
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
        torch.cuda.synchronize()
        ev[0].record()
        opt.zero_grad(set_to_none=True)
        out = layer(xs[i % len(xs)])
        ev[1].record()
        out.backward(grad_out)
        ev[2].record()
        opt.step()
        ev[3].record()
        torch.cuda.synchronize()
        if i >= args.warmup:
            times["forward"].append(ev[0].elapsed_time(ev[1]))
            times["backward"].append(ev[1].elapsed_time(ev[2]))
            times["optimizer"].append(ev[2].elapsed_time(ev[3]))
            times["step"].append(ev[0].elapsed_time(ev[3]))

    # A dense bfloat16 GEMM of one expert projection's FLOPs (rows T*K, n H, k D), float32 accumulation.
    R = T * K
    a = torch.randn(R, D, device=dev, dtype=torch.bfloat16)
    b = torch.randn(H, D, device=dev, dtype=torch.bfloat16)
    dense = []
    for i in range(5 + args.iters):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        torch.matmul(a, b.t())
        e1.record()
        torch.cuda.synchronize()
        if i >= 5:
            dense.append(e0.elapsed_time(e1))
    flops = 2.0 * R * D * H
    rec = {"schema": SCHEMA, "kind": "layer", "impl": "torch-torchtitan", "card": card, "gpus": 1, "preset": preset,
           "tokens": T, "dim": D, "hidden": H, "experts": E, "top_k": K, "dtype": "bf16", "iters": args.iters,
           "ms": median(times["step"]), "ms_min": min(times["step"]),
           "forward_ms": median(times["forward"]), "backward_ms": median(times["backward"]),
           "optimizer_ms": median(times["optimizer"]),
           "dense_gemm_ms": median(dense), "dense_gemm_tflops": flops / median(dense) / 1e9,
           "torch": torch.__version__}
    line = json.dumps(rec)
    print(line, flush=True)
    if jsonl:
        jsonl.write(line + "\n")
    del layer, opt, xs, grad_out, a, b
    torch.cuda.empty_cache()
    return rec


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="qwen3,small")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--jsonl")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("torchtitan_moe_layer.py: no CUDA device", file=sys.stderr)
        return 2
    card = torch.cuda.get_device_name(0)
    err = check(torch.device("cuda"))
    print(f"# check: relative error against a float32 per-expert loop {err:.2e}", flush=True)
    if not err < 3e-2:
        print(f"torchtitan_moe_layer.py: check failed, relative error {err}", file=sys.stderr)
        return 1
    jsonl = open(args.jsonl, "a") if args.jsonl else None
    rows = [run(name, args, card, jsonl) for name in args.preset.split(",")]
    print(f"# {card}  torch {torch.__version__}  medians of {args.iters} after {args.warmup} warm-ups (ms)")
    print(f"{'preset':8} {'step':>8} {'forward':>8} {'backward':>8} {'AdamW':>8} {'dense GEMM TFLOP/s':>19}")
    for r in rows:
        print(f"{r['preset']:8} {r['ms']:8.2f} {r['forward_ms']:8.2f} {r['backward_ms']:8.2f} {r['optimizer_ms']:8.2f} "
              f"{r['dense_gemm_tflops']:19.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
