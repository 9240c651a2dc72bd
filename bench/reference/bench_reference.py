"""Times the torchtitan-style reference dispatcher against raw NCCL and copy bandwidth.

    torchrun --standalone --nproc_per_node=N bench/reference/bench_reference.py --preset deepseek,qwen3
    python3 bench/reference/bench_reference.py --preset qwen3            # one GPU, no torchrun

Per preset (rank 0 prints one JSON line per measurement, then a table):
  dispatch_combine  reference dispatch + identity experts + combine          (N GPUs > 1)
  exchange          the two token all-to-alls inside it (phase events)       (N GPUs > 1)
  nccl_all_to_all   two all_to_all_single with equal splits, same bytes      (N GPUs > 1)
  copy              dst.copy_(src) of the exchange bytes, read+write counted (always)
  local_step/local  histogram, sort, gather, permute, unpermute, combine     (1 GPU, or --local)
A small float32 self-check against a naive definition runs first (kind "check").

Timing: CUDA events around each call, barrier + synchronize before each, `--warmup` untimed
calls, then `--iters` timed; each iteration's time is the max over ranks; we report the median
(ms), min and 90th percentile. Always run with NCCL_NVLS_ENABLE=0 (bench/gpu/run-h100.sh sets it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchtitan_dispatcher as tt  # noqa: E402

PRESETS = {
    "deepseek": dict(tokens=4096, dim=7168, experts=256, top_k=8, dtype="bf16"),
    "qwen3": dict(tokens=8192, dim=2048, experts=128, top_k=8, dtype="bf16"),
}
DTYPES = {"bf16": torch.bfloat16, "f32": torch.float32}
SCHEMA = "moesharp-bench/1"


# ----------------------------------------------------------------------------- helpers
class Ctx:
    def __init__(self):
        self.distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if not torch.cuda.is_available():
            raise SystemExit("error: CUDA is not available to torch")
        if self.local_rank >= torch.cuda.device_count():
            raise SystemExit(f"error: LOCAL_RANK {self.local_rank} but only "
                             f"{torch.cuda.device_count()} GPUs visible")
        torch.cuda.set_device(self.local_rank)
        self.device = torch.device("cuda", self.local_rank)
        if self.distributed:
            dist.init_process_group("nccl", timeout=datetime.timedelta(seconds=180),
                                    device_id=self.device)
        self.group = dist.group.WORLD if (self.distributed and self.world > 1) else None
        self.card = torch.cuda.get_device_name(self.device)
        try:
            v = torch.cuda.nccl.version()
            self.nccl = ".".join(str(p) for p in v) if isinstance(v, tuple) else str(v)
        except Exception:  # noqa: BLE001
            self.nccl = "unknown"
        self.records: list = []

    def barrier(self):
        if self.distributed and self.world > 1:
            dist.barrier()
        torch.cuda.synchronize()

    def max_over_ranks(self, t: torch.Tensor) -> torch.Tensor:
        if self.distributed and self.world > 1:
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t

    def emit(self, rec: dict, jsonl: str | None):
        rec = {"schema": SCHEMA, "impl": "torch-reference", "card": self.card,
               "gpus": self.world, "torch": torch.__version__, "nccl": self.nccl, **rec}
        self.records.append(rec)
        if self.rank == 0:
            line = json.dumps(rec, sort_keys=False)
            print(line, flush=True)
            if jsonl:
                with open(jsonl, "a", encoding="utf-8") as f:
                    f.write(line + "\n")


def stats(ms: list) -> dict:
    s = sorted(ms)
    p90 = s[min(len(s) - 1, int(math.ceil(0.9 * len(s))) - 1)]
    return {"ms": round(statistics.median(s), 4), "ms_min": round(s[0], 4),
            "ms_p90": round(p90, 4), "iters": len(s)}


def gbps(nbytes: int | None, ms: float) -> float | None:
    if not nbytes or ms <= 0:
        return None
    return round(nbytes / ms / 1e6, 2)


def time_it(ctx: Ctx, fn, warmup: int, iters: int, with_phases: bool = False):
    """fn(mark) runs one call. Returns (per-iteration ms list, {phase: per-iteration ms list});
    both are max over ranks per iteration."""
    totals, phase_names, phase_rows = [], None, []
    for i in range(warmup + iters):
        ctx.barrier()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        marks: list = []

        def mark(name, _marks=marks):
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            _marks.append((name, ev))

        start.record()
        fn(mark if with_phases else None)
        end.record()
        torch.cuda.synchronize()
        if i < warmup:
            continue
        totals.append(start.elapsed_time(end))
        if with_phases:
            names = [n for n, _ in marks]
            if phase_names is None:
                phase_names = names
            elif names != phase_names:
                raise RuntimeError(f"phase sequence changed: {names} vs {phase_names}")
            prev, row = start, []
            for _, ev in marks:
                row.append(prev.elapsed_time(ev))
                prev = ev
            phase_rows.append(row)
    t = ctx.max_over_ranks(torch.tensor(totals, device=ctx.device, dtype=torch.float64))
    totals = t.tolist()
    phases = {}
    if with_phases and phase_rows:
        p = ctx.max_over_ranks(torch.tensor(phase_rows, device=ctx.device, dtype=torch.float64))
        cols = p.t().tolist()
        phases = {n: cols[j] for j, n in enumerate(phase_names)}
    return totals, phases


def make_inputs(ctx: Ctx, T, D, E, K, dtype, seed):
    g = torch.Generator(device=ctx.device)
    g.manual_seed(seed + 7919 * ctx.rank)
    x = torch.randn(T, D, generator=g, device=ctx.device, dtype=torch.float32).to(dtype)
    logits = torch.rand(T, E, generator=g, device=ctx.device, dtype=torch.float32)
    scores, ids = torch.topk(logits, K, dim=1)  # K distinct experts per token
    return x, scores.contiguous(), ids.contiguous()


# ----------------------------------------------------------------------------- self-check
def naive_moe(x, scores, ids, score_before):
    """Σ_k f_e(s·x) or Σ_k s·f_e(x), f_e(v) = v·(1+e/8), terms added from zero in ascending e."""
    ids_sorted, perm = ids.sort(dim=1)
    s_sorted = scores.gather(1, perm)
    out = torch.zeros_like(x)
    for k in range(ids.shape[1]):
        f = (1.0 + ids_sorted[:, k].to(torch.float32) / 8.0).reshape(-1, 1)
        s = s_sorted[:, k:k + 1]
        out = out + ((x * s) * f if score_before else (x * f) * s)
    return out


def self_check(ctx: Ctx, args) -> bool:
    world, rank = ctx.world, ctx.rank
    sps = [1, 2] if (world > 1 and world % 2 == 0) else [1]
    all_ok = True
    for sp in sps:
        sp_groups = [None] * (world // sp)
        if sp > 1:  # every rank creates every SP group, in the same order
            sp_groups = [dist.new_group(list(range(g * sp, (g + 1) * sp))) for g in range(world // sp)]
        for score_before in (False, True):
            T, D, E, K = 37, 16, 4 * world, 3
            grp, sp_rank = rank // sp, rank % sp
            gen = torch.Generator(device=ctx.device)
            gen.manual_seed(args.seed + 101 * grp)
            x = torch.randn(T, D, generator=gen, device=ctx.device)
            scores, ids = torch.topk(torch.rand(T, E, generator=gen, device=ctx.device), K, dim=1)
            xs, ss, is_, Tp = tt.sp_pad_shard(x, scores.contiguous(), ids.contiguous(), sp, sp_rank)
            routed, tpe, meta = tt.dispatch(
                xs.contiguous(), ss.contiguous(), is_.contiguous(), num_experts=E, top_k=K,
                group=ctx.group, score_before_experts=score_before, tokens=T, padded_tokens=Tp,
                sp_size=sp, sp_rank=sp_rank)
            e_local = E // world
            y = tt.scaled_experts(routed, tpe, rank * e_local if ctx.group is not None else 0)
            out = tt.combine(y, meta, group=ctx.group)
            if sp > 1:
                dist.all_reduce(out, group=sp_groups[grp])
            ref = naive_moe(x, scores, ids, score_before)
            if out.shape != ref.shape:
                diff, ok, exact = 1e30, False, False  # shape mismatch
            else:
                diff = (out - ref).abs().max().item() if out.numel() else 0.0
                scale = ref.abs().max().item() if ref.numel() else 1.0
                ok = diff <= 1e-5 * max(scale, 1.0)
                exact = torch.equal(out, ref)
            flags = torch.tensor([0.0 if ok else 1.0, 0.0 if exact else 1.0, diff],
                                 device=ctx.device, dtype=torch.float64)
            flags = ctx.max_over_ranks(flags).tolist()
            ok, exact, diff = flags[0] == 0.0, flags[1] == 0.0, flags[2]
            all_ok &= ok
            ctx.emit({"kind": "check", "preset": "selfcheck", "tokens": T, "dim": D,
                      "experts": E, "top_k": K, "dtype": "f32", "sp": sp,
                      "score_before_experts": score_before, "ok": ok, "exact": exact,
                      "max_abs_diff": diff}, args.jsonl)
    return all_ok


# ----------------------------------------------------------------------------- measurements
def bench_preset(ctx: Ctx, name: str, p: dict, args):
    T, D, E, K = p["tokens"], p["dim"], p["experts"], p["top_k"]
    dtype = DTYPES[p["dtype"]]
    elem = torch.finfo(dtype).bits // 8
    N = T * K
    S = ctx.world
    base = {"preset": name, "tokens": T, "dim": D, "experts": E, "top_k": K, "dtype": p["dtype"]}
    xchg_bytes = 2 * N * D * elem  # dispatch + combine, rows sent per rank (self included)
    if E % S:
        raise SystemExit(f"error: experts={E} not divisible by {S} GPUs")

    x, scores, ids = make_inputs(ctx, T, D, E, K, dtype, args.seed)

    if ctx.group is not None and "dispatch" not in args.skip:
        def run(mark):
            routed, tpe, meta = tt.dispatch(x, scores, ids, num_experts=E, top_k=K,
                                            group=ctx.group,
                                            score_before_experts=args.score_before, mark=mark)
            y = tt.identity_experts(routed, tpe)
            tt.combine(y, meta, group=ctx.group, mark=mark)

        totals, phases = time_it(ctx, run, args.warmup, args.iters, with_phases=True)
        st = stats(totals)
        ctx.emit({**base, "kind": "dispatch_combine", **st, "bytes": xchg_bytes,
                  "gb_per_s": gbps(xchg_bytes, st["ms"]),
                  "score_before_experts": args.score_before,
                  "phases": {k: round(statistics.median(v), 4) for k, v in phases.items()}},
                 args.jsonl)
        ex = [a + b for a, b in zip(phases["token_dispatch"], phases["token_combine"])]
        st = stats(ex)
        ctx.emit({**base, "kind": "exchange", **st, "bytes": xchg_bytes,
                  "gb_per_s": gbps(xchg_bytes, st["ms"])}, args.jsonl)
        torch.cuda.empty_cache()

    if ctx.group is not None and "nccl" not in args.skip:
        rows = -(-N // S) * S
        a = torch.randn(rows, D, device=ctx.device, dtype=torch.float32).to(dtype)
        b, c = torch.empty_like(a), torch.empty_like(a)

        def run(mark):
            dist.all_to_all_single(b, a, group=ctx.group)  # dispatch-sized, equal splits
            dist.all_to_all_single(c, b, group=ctx.group)  # combine-sized
        totals, _ = time_it(ctx, run, args.warmup, args.iters)
        st = stats(totals)
        nb = 2 * rows * D * elem
        ctx.emit({**base, "kind": "nccl_all_to_all", "impl": "nccl-raw", **st, "bytes": nb,
                  "gb_per_s": gbps(nb, st["ms"])}, args.jsonl)
        del a, b, c
        torch.cuda.empty_cache()

    if "copy" not in args.skip:
        src = torch.empty(xchg_bytes // elem, device=ctx.device, dtype=dtype).normal_()
        dst = torch.empty_like(src)
        totals, _ = time_it(ctx, lambda mark: dst.copy_(src), args.warmup, args.iters)
        st = stats(totals)
        nb = 2 * xchg_bytes  # read + write
        ctx.emit({**base, "kind": "copy", "impl": "torch-copy", **st, "bytes": nb,
                  "gb_per_s": gbps(nb, st["ms"])}, args.jsonl)
        del src, dst
        torch.cuda.empty_cache()

    if (ctx.world == 1 or args.local) and "local" not in args.skip:
        bench_local(ctx, base, x, scores, ids, args)
    del x, scores, ids
    torch.cuda.empty_cache()


def bench_local(ctx: Ctx, base: dict, x, scores, ids, args):
    """The local steps alone, no exchange. permute/unpermute use a virtual EP layout of
    --virtual-ep ranks (the rows this rank holds, viewed as if received rank-major)."""
    T, D, E, K = base["tokens"], base["dim"], base["experts"], base["top_k"]
    elem = x.element_size()
    N = T * K
    V = args.virtual_ep if E % args.virtual_ep == 0 else 1

    def run(mark):
        counts = tt.histogram(ids, E)
        mark("histogram")
        order = torch.argsort(ids.view(-1), stable=True)
        s_sorted = scores.view(-1)[order]
        token_idx = order // K
        mark("sort")
        routed = x[token_idx]
        if args.score_before:
            routed = (routed.to(torch.float32) * s_sorted.reshape(-1, 1)).to(x.dtype)
        mark("gather")
        shape, permuted, pidx, _ = tt.permute(routed, counts, V)
        mark("permute")
        back = tt.unpermute(permuted, shape, pidx)
        mark("unpermute")
        if not args.score_before:
            back = (back.to(torch.float32) * s_sorted.reshape(-1, 1)).to(back.dtype)
        out = torch.zeros(T, D, device=x.device, dtype=x.dtype)
        tt.deterministic_scatter_add(out, token_idx, back)
        mark("combine")

    totals, phases = time_it(ctx, run, args.warmup, args.iters, with_phases=True)
    step_bytes = {"histogram": N * ids.element_size(), "sort": None,
                  "gather": 2 * N * D * elem, "permute": 2 * N * D * elem,
                  "unpermute": 2 * N * D * elem, "combine": (N + T) * D * elem}
    for step, ms in phases.items():
        st = stats(ms)
        ctx.emit({**base, "kind": "local_step", "step": step, **st, "bytes": step_bytes[step],
                  "gb_per_s": gbps(step_bytes[step], st["ms"]), "virtual_ep": V}, args.jsonl)
    nb = (7 * N + T) * D * elem
    st = stats(totals)
    ctx.emit({**base, "kind": "local", **st, "bytes": nb, "gb_per_s": gbps(nb, st["ms"]),
              "virtual_ep": V}, args.jsonl)


# ----------------------------------------------------------------------------- main
def print_table(records: list):
    print(f"\n{'preset':<9} {'kind':<17} {'impl':<16} {'gpus':>4} {'ms':>9} {'GB/s':>9}  note")
    for r in records:
        gb = r.get("gb_per_s")
        note = r.get("step", "")
        if r["kind"] == "check":
            note = f"sp={r['sp']} before={r['score_before_experts']} ok={r['ok']} exact={r['exact']}"
        ms = r.get("ms")
        print(f"{r.get('preset', ''):<9} {r['kind']:<17} {r['impl']:<16} {r['gpus']:>4} "
              f"{ms if ms is not None else '':>9} {gb if gb is not None else '':>9}  {note}")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="deepseek,qwen3",
                    help="comma list of " + ",".join(PRESETS) + ", or 'custom' (use the shape flags)")
    ap.add_argument("--tokens", type=int, default=4096, help="tokens per rank (custom)")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                    help="element type; overrides the presets' (bf16) when given; custom shapes default to bf16")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--score-before", action="store_true", help="scoreBeforeExperts")
    ap.add_argument("--local", action="store_true", help="also time local steps when N > 1")
    ap.add_argument("--virtual-ep", type=int, default=4, help="EP layout for the local permute")
    ap.add_argument("--skip", default="", help="comma list of: check,dispatch,nccl,copy,local")
    ap.add_argument("--jsonl", default=None, help="append JSON lines here (rank 0)")
    a = ap.parse_args(argv)
    a.skip = {s for s in a.skip.split(",") if s}
    if a.iters < 1 or a.warmup < 0:
        ap.error("--iters must be >= 1 and --warmup >= 0")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    presets = []
    for name in [p for p in args.preset.split(",") if p]:
        if name == "custom":
            presets.append((name, dict(tokens=args.tokens, dim=args.dim, experts=args.experts,
                                       top_k=args.top_k, dtype=args.dtype or "bf16")))
        elif name in PRESETS:
            presets.append((name, dict(PRESETS[name], **({"dtype": args.dtype} if args.dtype else {}))))
        else:
            print(f"error: unknown preset {name!r}", file=sys.stderr)
            return 2
    ctx = Ctx()
    t0 = time.time()
    status = 0
    try:
        if ctx.rank == 0:
            print(f"# {ctx.card} x{ctx.world}  torch {torch.__version__}  nccl {ctx.nccl}  "
                  f"NCCL_NVLS_ENABLE={os.environ.get('NCCL_NVLS_ENABLE', '(unset)')}", flush=True)
        if "check" not in args.skip and not self_check(ctx, args):
            status = 3
            if ctx.rank == 0:
                print("error: self-check against the naive definition FAILED", file=sys.stderr)
        for name, p in presets:
            bench_preset(ctx, name, p, args)
        if ctx.rank == 0:
            print_table(ctx.records)
            print(f"# done in {time.time() - t0:.1f} s", flush=True)
    finally:
        if ctx.distributed:
            dist.destroy_process_group()
    return status


if __name__ == "__main__":
    sys.exit(main())
