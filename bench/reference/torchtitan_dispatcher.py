"""A PyTorch + NCCL reference of torchtitan's AllToAllTokenDispatcher (the seed system).

This follows shared/DESIGN.md section 1 step by step and keeps torchtitan's own choices
(torch.histc for the counts, a stable argsort of the flattened ids, an all_to_all_single of
the counts viewed [S, e], a device->host sync for the split lists, a generated permutation
index for rank-major -> expert-major, a deterministic scatter_add for the combine). It is a
timing baseline, so it is deliberately NOT optimised beyond what torchtitan does.

Letters: T tokens, D model dim, K top-k, E experts, S ranks in the EP group, e = E/S local
experts, N = T*K routed rows, R rows a rank receives.

    routed_RD, tokens_per_local_expert_e, meta = dispatch(x_TD, scores_TK, ids_TK, ...)
    y_RD = experts(routed_RD, tokens_per_local_expert_e)      # identity_experts for timing
    out_TD = combine(y_RD, meta)

`mark(name)`, when given, is called at the end of each step (the benchmark records a CUDA
event there); it never changes what is computed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.distributed as dist

Mark = Optional[Callable[[str], None]]


def _mark(mark: Mark, name: str) -> None:
    if mark is not None:
        mark(name)


# ---------------------------------------------------------------------------------------
# Step 1: SP split with padding (the seed's fix: pad T up to a multiple of sp).
# ---------------------------------------------------------------------------------------
def sp_pad_shard(x_TD, scores_TK, ids_TK, sp_size: int, sp_rank: int):
    """Pad T to Tp = ceil(T/sp)*sp (pad rows: x = 0, score 0, id 0) and keep SP rank's rows
    [sp_rank*Tp/sp, (sp_rank+1)*Tp/sp). Returns (x, scores, ids, Tp)."""
    T = x_TD.shape[0]
    if sp_size <= 1:
        return x_TD, scores_TK, ids_TK, T
    Tp = -(-T // sp_size) * sp_size
    pad = Tp - T
    if pad:
        x_TD = torch.cat([x_TD, x_TD.new_zeros(pad, x_TD.shape[1])])
        scores_TK = torch.cat([scores_TK, scores_TK.new_zeros(pad, scores_TK.shape[1])])
        ids_TK = torch.cat([ids_TK, ids_TK.new_zeros(pad, ids_TK.shape[1])])
    n = Tp // sp_size
    lo = sp_rank * n
    return x_TD[lo:lo + n], scores_TK[lo:lo + n], ids_TK[lo:lo + n], Tp


# ---------------------------------------------------------------------------------------
# Step 2: histogram + local reorder.
# ---------------------------------------------------------------------------------------
_HISTC_NEEDS_FLOAT: list = []  # learned once: whether histc rejects integer input here


def histogram(ids_TK: torch.Tensor, num_experts: int) -> torch.Tensor:
    """counts[E] (int64) of the flattened ids, with torch.histc as torchtitan's router does."""
    flat = ids_TK.reshape(-1)
    if not _HISTC_NEEDS_FLOAT:
        try:
            h = torch.histc(flat, bins=num_experts, min=0, max=num_experts)
            _HISTC_NEEDS_FLOAT.append(False)
            return h.to(torch.int64)
        except (RuntimeError, NotImplementedError):
            _HISTC_NEEDS_FLOAT.append(True)
    if _HISTC_NEEDS_FLOAT[0]:
        flat = flat.float()
    return torch.histc(flat, bins=num_experts, min=0, max=num_experts).to(torch.int64)


def local_reorder(x_TD, scores_TK, ids_TK, top_k: int, score_before_experts: bool):
    """torchtitan _local_reorder: stable argsort of the flattened ids, gather the rows.
    Returns (routed_ND, token_indices_experts_sorted_N, scores_experts_sorted_N)."""
    order_N = torch.argsort(ids_TK.view(-1), stable=True)
    scores_sorted_N = scores_TK.view(-1)[order_N]
    token_idx_N = order_N // top_k
    routed_ND = x_TD[token_idx_N]
    if score_before_experts:
        routed_ND = (routed_ND.to(torch.float32) * scores_sorted_N.reshape(-1, 1)).to(x_TD.dtype)
    return routed_ND, token_idx_N, scores_sorted_N


# ---------------------------------------------------------------------------------------
# Step 5: rank-major -> expert-major with a generated permutation index (torchtitan _permute).
# ---------------------------------------------------------------------------------------
def permute(routed_RD, counts_from_ranks_E, ep_size: int):
    """counts_from_ranks_E is [S*e] rank-major: (r0,e0),(r0,e1),...,(r1,e0),...
    Returns (input_shape, permuted_RD, permuted_indices, tokens_per_local_expert_e)."""
    e = counts_from_ranks_E.shape[0] // ep_size
    device = counts_from_ranks_E.device
    total = routed_RD.shape[0]
    t_mat = counts_from_ranks_E.view(ep_size, e)
    input_starts = (counts_from_ranks_E.cumsum(0) - counts_from_ranks_E).view(ep_size, e)
    segment_lens = t_mat.t().reshape(-1)
    input_starts = input_starts.t().reshape(-1)
    seg_ids = torch.arange(segment_lens.shape[0], device=device).repeat_interleave(
        segment_lens, output_size=total)
    output_starts = segment_lens.cumsum(0) - segment_lens
    permuted_indices = (input_starts[seg_ids]
                        + torch.arange(seg_ids.shape[0], device=device)
                        - output_starts[seg_ids])
    tokens_per_local_expert_e = t_mat.sum(0)
    return routed_RD.shape, routed_RD[permuted_indices, :], permuted_indices, tokens_per_local_expert_e


def unpermute(routed_RD, input_shape, permuted_indices):
    out = routed_RD.new_empty(input_shape)
    out[permuted_indices, :] = routed_RD
    return out


# ---------------------------------------------------------------------------------------
# Step 7 helper: torchtitan's deterministic_scatter_add (scatter_add under deterministic mode,
# which on CUDA becomes a sorted index_put accumulate: terms added in expert-sorted order).
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def _deterministic():
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def deterministic_scatter_add(out_TD, index_N, src_ND):
    with _deterministic():
        return out_TD.scatter_add(0, index_N.reshape(-1, 1).expand(-1, out_TD.shape[1]), src_ND)


# ---------------------------------------------------------------------------------------
# Dispatch / combine.
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DispatchMetadata:
    token_indices_experts_sorted_N: torch.Tensor
    topk_scores_experts_sorted_N: torch.Tensor
    input_shape: Optional[torch.Size]          # None on the EP = 1 path
    permuted_indices: Optional[torch.Tensor]   # None on the EP = 1 path
    input_splits: list
    output_splits: list
    tokens: int             # T of the caller (before SP padding)
    padded_tokens: int      # Tp (= T without SP)
    sp_size: int
    sp_rank: int
    score_before_experts: bool


def dispatch(x_TD, scores_TK, ids_TK, *, num_experts: int, top_k: int,
             group=None, score_before_experts: bool = False,
             tokens: Optional[int] = None, padded_tokens: Optional[int] = None,
             sp_size: int = 1, sp_rank: int = 0, mark: Mark = None):
    """x_TD: [T_s, D] this rank's (SP-shard of) tokens; scores_TK float32; ids_TK int64.
    group: the EP process group (None or size 1 -> torchtitan's local path, no exchange).
    Returns (routed_RD expert-major, tokens_per_local_expert_e, DispatchMetadata)."""
    ep_size = 1 if group is None else dist.get_world_size(group)
    T = x_TD.shape[0] if tokens is None else tokens
    Tp = x_TD.shape[0] * sp_size if padded_tokens is None else padded_tokens

    counts_E = histogram(ids_TK, num_experts)
    _mark(mark, "histogram")
    routed_ND, token_idx_N, scores_sorted_N = local_reorder(
        x_TD, scores_TK, ids_TK, top_k, score_before_experts)
    _mark(mark, "reorder")

    if ep_size == 1:
        meta = DispatchMetadata(token_idx_N, scores_sorted_N, None, None, [], [],
                                T, Tp, sp_size, sp_rank, score_before_experts)
        return routed_ND, counts_E, meta

    if num_experts % ep_size:
        raise ValueError(f"num_experts={num_experts} is not divisible by the EP size {ep_size}")
    with torch.no_grad():
        # Step 3: count exchange, counts viewed [S, e].
        counts_from_ranks_SE = torch.empty_like(counts_E.view(ep_size, -1))
        dist.all_to_all_single(counts_from_ranks_SE, counts_E.view(ep_size, -1).contiguous(),
                               group=group)
        counts_from_ranks_E = counts_from_ranks_SE.reshape(-1)
        input_splits = counts_E.view(ep_size, -1).sum(dim=1).to(torch.device("cpu"), non_blocking=True)
        # torchtitan: "this would incur a device-to-host sync"
        output_splits = counts_from_ranks_E.view(ep_size, -1).sum(dim=1).to(
            torch.device("cpu"), non_blocking=False)
        input_splits = input_splits.tolist()
        output_splits = output_splits.tolist()
    _mark(mark, "count_exchange")

    # Step 4: token exchange (rank-major on arrival).
    received_RD = routed_ND.new_empty((sum(output_splits), routed_ND.shape[1]))
    dist.all_to_all_single(received_RD, routed_ND, output_split_sizes=output_splits,
                           input_split_sizes=input_splits, group=group)
    _mark(mark, "token_dispatch")

    # Step 5: permute to expert-major.
    input_shape, routed_RD, permuted_indices, tokens_per_local_expert_e = permute(
        received_RD, counts_from_ranks_E, ep_size)
    _mark(mark, "permute")

    meta = DispatchMetadata(token_idx_N, scores_sorted_N, input_shape, permuted_indices,
                            input_splits, output_splits, T, Tp, sp_size, sp_rank,
                            score_before_experts)
    return routed_RD, tokens_per_local_expert_e, meta


def combine(routed_out_RD, meta: DispatchMetadata, *, group=None, mark: Mark = None):
    """Inverse permute, all-to-all back (splits swapped), score multiply (float32) unless the
    scores came before the experts, deterministic scatter_add into zeros[Tp, D] at global
    token index (local + sp_rank*Tp/sp), pad rows dropped. Returns out [T, D]."""
    ep_size = 1 if group is None else dist.get_world_size(group)
    if ep_size > 1:
        y = unpermute(routed_out_RD, meta.input_shape, meta.permuted_indices)
        _mark(mark, "unpermute")
        back_ND = y.new_empty((sum(meta.input_splits), y.shape[1]))
        dist.all_to_all_single(back_ND, y, output_split_sizes=meta.input_splits,
                               input_split_sizes=meta.output_splits, group=group)
        _mark(mark, "token_combine")
    else:
        back_ND = routed_out_RD

    if not meta.score_before_experts:
        back_ND = (back_ND.to(torch.float32)
                   * meta.topk_scores_experts_sorted_N.reshape(-1, 1)).to(back_ND.dtype)
    index_N = meta.token_indices_experts_sorted_N
    if meta.sp_size > 1:
        index_N = index_N + meta.sp_rank * (meta.padded_tokens // meta.sp_size)
    out = torch.zeros(meta.padded_tokens, back_ND.shape[1], device=back_ND.device,
                      dtype=back_ND.dtype)
    out = deterministic_scatter_add(out, index_N, back_ND)
    _mark(mark, "score_scatter")
    return out[:meta.tokens]  # rows >= T are the SP pad rows: dropped


def identity_experts(routed_RD, tokens_per_local_expert_e):
    """Stand-in experts for timing dispatch + combine only."""
    return routed_RD


def scaled_experts(routed_RD, tokens_per_local_expert_e, first_expert: int):
    """The golden files' expert function: row * (1 + e/8) in float32, e the global expert id."""
    e_local = tokens_per_local_expert_e.shape[0]
    gid = torch.arange(first_expert, first_expert + e_local, device=routed_RD.device)
    gid = gid.repeat_interleave(tokens_per_local_expert_e, output_size=routed_RD.shape[0])
    factor = 1.0 + gid.to(torch.float32) / 8.0
    return (routed_RD.to(torch.float32) * factor.reshape(-1, 1)).to(routed_RD.dtype)
