using System.Collections.Immutable;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>What <see cref="TokenDispatcher.Dispatch"/> returns.</summary>
/// <param name="RoutedTokens">
/// <c>[R, D]</c> in the dtype of x (float32 or bfloat16): the rows this rank's experts must process, expert-major (for
/// each local expert, the rows from source rank 0, 1, …), each expert's block padded with zero rows to the alignment
/// (bfloat16 rows in the padded experts' layout where a layer's experts placed them: <see cref="ExpertLayout"/>).
/// </param>
/// <param name="TokensPerLocalExpert"><c>[E/S]</c>: rows per local expert, alignment padding included.</param>
/// <param name="Metadata">What combine and the backward passes need; pass it back unchanged.</param>
/// <remarks>
/// <c>using var d = dispatcher.Dispatch(...)</c> hands <see cref="RoutedTokens"/> back to the dispatcher's allocator
/// (<see cref="TokenDispatcher.Allocator"/>) and releases <see cref="Metadata"/> at the end of the scope: do that once
/// combine (and any backward pass) is done.
/// </remarks>
public sealed record DispatchResult(
    Tensor RoutedTokens,
    ImmutableArray<int> TokensPerLocalExpert,
    DispatchMetadata Metadata
) : IDisposable
{
    private int _disposed;

    /// <summary>
    /// The dispatch's traffic over the EP group (rows, bytes, count and forward waits), the same on every rank; null
    /// unless <see cref="TokenDispatcherConfig.CollectTraffic"/> is on. <see cref="DispatchMetadata.Traffic"/> gains
    /// the back wait once combined.
    /// </summary>
    public Telemetry.TrafficReport? Traffic { get; init; }

    /// <summary>
    /// The padded layout the experts asked for (<see cref="IRoutedRowPlacement"/>) when the dispatch wrote
    /// <see cref="RoutedTokens"/> in it: bfloat16 <c>[G·capacity, D]</c>, expert j's rows from row <c>j·capacity</c>,
    /// zeros after them. Null for the packed expert-major rows. Its device table belongs to the experts that run it.
    /// </summary>
    internal Compute.PaddedGroups? ExpertLayout { get; init; }

    /// <summary>
    /// In capacity mode (<see cref="TokenDispatcherConfig.Capacity"/>): <c>[E/S]</c> int32 on the dispatcher's device,
    /// the rows per local expert (alignment padding included) that <see cref="TokensPerLocalExpert"/> holds in the
    /// normal mode; the routed rows after their sum are zero rows. Owned by <see cref="Metadata"/> (released with it).
    /// Null in the normal mode, where <see cref="TokensPerLocalExpert"/> has the counts; in capacity mode that array is
    /// empty, since reading the counts to the host is what the mode avoids.
    /// </summary>
    public Tensor? DeviceTokensPerLocalExpert => Metadata.Capacity?.TokensPerLocalExpert;

    /// <summary>
    /// 1 when this capacity-mode dispatch ran the overflow round (a second, sized exchange of the rows beyond the
    /// slots), else 0; always 0 in the normal mode. <see cref="TokenDispatcher.OverflowRounds"/> counts them.
    /// </summary>
    public int OverflowRounds => Metadata.OverflowRounds;

    /// <summary>
    /// Returns <see cref="RoutedTokens"/> to the dispatcher's <see cref="TokenDispatcher.Allocator"/> and releases
    /// <see cref="Metadata"/> (<see cref="TokenDispatcher.Release"/>). Only the first call does anything.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        Metadata.Owner.Allocator.Return(RoutedTokens);
        Metadata.Owner.Release(Metadata);
    }
}
