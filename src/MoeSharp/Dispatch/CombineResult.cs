using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>What <see cref="TokenDispatcher.CombineWithState"/> returns: the output and what backward needs.</summary>
/// <param name="Output">
/// Replicated layout: <c>[T, D]</c> with only this rank's shard filled (sum it over the SP group with
/// <see cref="TokenDispatcher.ReduceSequenceParallel"/>); sharded layout: <c>[T_s, D]</c>.
/// </param>
/// <param name="State">The expert outputs as received back, for <see cref="TokenDispatcher.CombineBackward"/>.</param>
public sealed record CombineResult(Tensor Output, CombineState State);

/// <summary>The rows combine summed, kept for the score gradient of the backward pass.</summary>
public sealed class CombineState
{
    internal CombineState(DispatchMetadata metadata, Tensor combinedRows)
    {
        Metadata = metadata;
        CombinedRows = combinedRows;
    }

    /// <summary>The dispatch this combine belongs to.</summary>
    public DispatchMetadata Metadata { get; }

    /// <summary>Expert outputs in the local layout, before the score multiply.</summary>
    internal Tensor CombinedRows { get; }
}
