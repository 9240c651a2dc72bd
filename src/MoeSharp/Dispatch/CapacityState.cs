using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// What a capacity-mode dispatch (<see cref="DispatchCapacity"/>) leaves for combine and the backward passes: the slot
/// size, the device counts per local expert, and the overflow round's sizes when the group overflowed.
/// </summary>
/// <param name="RowsPerPeer">C: rows of each peer's slot in the first round.</param>
/// <param name="TokensPerLocalExpert"><c>[e]</c> int32 on the device: routed rows per local expert, padded to the
/// alignment.</param>
/// <param name="Overflow">The overflow round's row counts, or null when no rank of the group overflowed.</param>
internal sealed record CapacityState(int RowsPerPeer, Tensor TokensPerLocalExpert, OverflowRound? Overflow);

/// <summary>
/// The second exchange round of a capacity-mode dispatch: the rows beyond each peer's slot. Its counts were read to
/// the host, which happens only when some rank of the group overflowed.
/// </summary>
/// <param name="SlotRows">S·C: where the overflow rows start, on both sides.</param>
/// <param name="SendRows"><c>[S]</c> rows this rank sends each rank in the round (the dispatch direction).</param>
/// <param name="ReceiveRows"><c>[S]</c> rows this rank receives from each rank in the round.</param>
internal sealed record OverflowRound(int SlotRows, int[] SendRows, int[] ReceiveRows)
{
    /// <summary>Rows this rank sends in the round.</summary>
    public int Sent => SendRows.Sum();

    /// <summary>Rows this rank receives in the round.</summary>
    public int Received => ReceiveRows.Sum();
}
