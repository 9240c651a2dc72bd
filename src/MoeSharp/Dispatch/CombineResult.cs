using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>What <see cref="TokenDispatcher.CombineWithState"/> returns: the output and what backward needs.</summary>
/// <param name="Output">
/// Replicated layout: <c>[T, D]</c> with only this rank's shard filled (sum it over the SP group with
/// <see cref="TokenDispatcher.ReduceSequenceParallel"/>); sharded layout: <c>[T_s, D]</c>.
/// </param>
/// <param name="State">The expert outputs as received back, for <see cref="TokenDispatcher.CombineBackward"/>.</param>
public sealed record CombineResult(Tensor Output, CombineState State);

/// <summary>
/// The rows combine summed, kept for the score gradient of the backward pass. Disposing it hands the received rows
/// back to the dispatcher's allocator when combine rented them (EP &gt; 1); with EP = 1 they are the caller's expert
/// outputs, which it keeps.
/// </summary>
public sealed class CombineState : IDisposable
{
    private readonly bool _ownsRows;
    private int _disposed;

    internal CombineState(DispatchMetadata metadata, Tensor combinedRows, bool ownsRows)
    {
        Metadata = metadata;
        CombinedRows = combinedRows;
        _ownsRows = ownsRows;
    }

    /// <summary>The dispatch this combine belongs to.</summary>
    public DispatchMetadata Metadata { get; }

    /// <summary>Expert outputs in the local layout, before the score multiply.</summary>
    internal Tensor CombinedRows { get; }

    /// <summary>Returns the received rows to the dispatcher's allocator (when combine rented them); once
    /// only.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0 || !_ownsRows)
            return;
        Metadata.Owner.Allocator.Return(CombinedRows);
    }
}
