using System.Collections.Immutable;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// Everything combine and the backward passes need from a dispatch (the handle of DeepEP's
/// layout → dispatch → combine): its <see cref="DispatchPlan"/> and the row maps built from it on the device.
/// Immutable but for <see cref="Traffic"/>; it belongs to the dispatcher that made it. Disposing it hands the row
/// maps back to the dispatcher's allocator (<see cref="TokenDispatcher.Release"/>); metadata never disposed is
/// simply collected by the GC.
/// </summary>
/// <remarks>
/// The "local layout" is the order of this rank's routed rows before they leave: expert-sorted positions
/// (<c>[N]</c>, N = (T_s + pad)·K) when rows are exchanged, or the routed tensor itself (with alignment
/// padding) when EP = 1. Every per-row map indexes the local layout (see <c>docs/architecture.md</c>).
/// </remarks>
public sealed class DispatchMetadata : IDisposable
{
    private int _released;

    internal DispatchMetadata(
        TokenDispatcher owner,
        DispatchPlan plan,
        int[] inputShape,
        DType rowType,
        LocalLayoutMaps local,
        ExpertMajorPermutation? permutation
    )
    {
        Owner = owner;
        Plan = plan;
        InputShape = inputShape;
        RowType = rowType;
        Local = local;
        Permutation = permutation;
    }

    /// <summary>
    /// This dispatch's traffic when <see cref="TokenDispatcherConfig.CollectTraffic"/> is on (null otherwise): after
    /// dispatch as <see cref="DispatchResult.Traffic"/>; after <see cref="TokenDispatcher.CombineWithState"/> the same
    /// with every rank's back-exchange wait. Still readable once released.
    /// </summary>
    public Telemetry.TrafficReport? Traffic { get; internal set; }

    /// <summary>The rows of the token axis this rank routed.</summary>
    public SequenceShard Shard => Plan.Shard;

    /// <summary>D, elements per token row.</summary>
    public int Dim => InputShape[1];

    /// <summary>
    /// The element type of every row tensor of this dispatch (x, routed rows, expert outputs, combine output and
    /// their gradients): float32 or bfloat16, the dtype of the dispatched <c>x</c>.
    /// </summary>
    public DType RowType { get; }

    /// <summary><c>[S]</c>: rows this rank sends to each rank (torchtitan's input_splits).</summary>
    public ImmutableArray<int> InputSplits => Plan.InputSplits;

    /// <summary><c>[S]</c>: rows this rank receives from each rank (torchtitan's output_splits).</summary>
    public ImmutableArray<int> OutputSplits => Plan.OutputSplits;

    /// <summary><c>[E/S]</c>: rows per local expert, alignment padding included.</summary>
    public ImmutableArray<int> TokensPerLocalExpert => Plan.TokensPerLocalExpert;

    /// <summary><c>[E]</c>: rows this rank routed to each expert (pad rows included).</summary>
    public ImmutableArray<int> ExpertCounts => Plan.ExpertCounts;

    /// <summary>Rows sent in total (N, pad rows included).</summary>
    public int RowsSent => Plan.SentRows;

    /// <summary>Rows received in total, before alignment padding.</summary>
    public int RowsReceived => Plan.RowsReceived;

    /// <summary>Rows of the routed tensor (R), alignment padding included.</summary>
    public int RoutedRows => Plan.RoutedRows;

    /// <summary>True once the metadata's tensors were handed back (<see cref="Dispose"/>).</summary>
    public bool IsReleased => Volatile.Read(ref _released) != 0;

    internal TokenDispatcher Owner { get; }

    /// <summary>What the dispatch decided from the counts.</summary>
    internal DispatchPlan Plan { get; }

    /// <summary>Shape of the dispatch's <c>x</c>.</summary>
    internal int[] InputShape { get; }

    /// <summary>The four row maps of the local layout.</summary>
    internal LocalLayoutMaps Local { get; }

    /// <summary>Rank-major ↔ expert-major maps, or null when the received layout is already expert-major.</summary>
    internal ExpertMajorPermutation? Permutation { get; }

    /// <summary>
    /// Where the experts had the routed rows placed (<see cref="IRoutedRowPlacement"/>): the routed rows are the
    /// padded experts' bfloat16 rows, and combine's backward writes the output gradient there the same way; null for
    /// the packed expert-major rows in the row dtype.
    /// </summary>
    internal IRoutedRowPlacement? Placement { get; init; }

    /// <summary>Capacity mode's slot size, device counts and overflow round; null in the normal mode.</summary>
    internal CapacityState? Capacity { get; init; }

    /// <summary>
    /// Whether the dispatch ran the capacity mode's overflow round (some rank of the EP group had more rows for a peer
    /// than its slot holds): 0 or 1; always 0 in the normal mode.
    /// </summary>
    public int OverflowRounds => Capacity?.Overflow is null ? 0 : 1;

    /// <summary>The tensors the metadata owns: the row maps and the permutation.</summary>
    internal IEnumerable<Tensor> Tensors
    {
        get
        {
            yield return Local.RowToken;
            yield return Local.RowScore;
            yield return Local.TokenPositions;
            yield return Local.EntryRow;
            if (Capacity is not null)
                yield return Capacity.TokensPerLocalExpert;
            if (Permutation is null)
                yield break;
            yield return Permutation.ExpertMajorRowOf;
            yield return Permutation.RankMajorRowOf;
        }
    }

    /// <summary>
    /// Hands the row maps back to the dispatcher's allocator once combine and backward are done; the metadata cannot
    /// be used afterwards. Only the first call does anything.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
            return;
        foreach (Tensor tensor in Tensors)
            Owner.Allocator.Return(tensor);
    }
}

/// <summary>Maps between the received rank-major rows and the expert-major routed rows.</summary>
/// <param name="ExpertMajorRowOf"><c>[R]</c>: received row of each routed row, -1 for alignment pad rows.</param>
/// <param name="RankMajorRowOf"><c>[Rrecv]</c>: routed row of each received row.</param>
internal sealed record ExpertMajorPermutation(Tensor ExpertMajorRowOf, Tensor RankMajorRowOf);
