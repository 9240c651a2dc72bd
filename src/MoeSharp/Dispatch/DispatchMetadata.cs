using System.Collections.Immutable;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// Everything combine and the backward passes need from a dispatch (the handle of DeepEP's
/// layout → dispatch → combine). Immutable; it belongs to the dispatcher that made it.
/// </summary>
/// <remarks>
/// The "local layout" is the order of this rank's routed rows before they leave: expert-sorted positions
/// (<c>[N]</c>, N = (T_s + pad)·K) when rows are exchanged, or the routed tensor itself (with alignment
/// padding) when EP = 1. Every per-row map below indexes the local layout.
/// </remarks>
public sealed class DispatchMetadata
{
    internal DispatchMetadata(
        TokenDispatcher owner,
        SequenceShard shard,
        int[] inputShape,
        int inputRowOffset,
        int dim,
        DType rowType,
        ImmutableArray<int> inputSplits,
        ImmutableArray<int> outputSplits,
        ImmutableArray<int> tokensPerLocalExpert,
        ImmutableArray<int> expertCounts,
        LocalLayout local,
        ExpertMajorPermutation? permutation)
    {
        Owner = owner;
        Shard = shard;
        InputShape = inputShape;
        InputRowOffset = inputRowOffset;
        Dim = dim;
        RowType = rowType;
        InputSplits = inputSplits;
        OutputSplits = outputSplits;
        TokensPerLocalExpert = tokensPerLocalExpert;
        ExpertCounts = expertCounts;
        Local = local;
        Permutation = permutation;
    }

    /// <summary>The rows of the token axis this rank routed.</summary>
    public SequenceShard Shard { get; }

    /// <summary>D, elements per token row.</summary>
    public int Dim { get; }

    /// <summary>
    /// The element type of every row tensor of this dispatch (x, routed rows, expert outputs, combine output and
    /// their gradients): float32 or bfloat16, the dtype of the dispatched <c>x</c>.
    /// </summary>
    public DType RowType { get; }

    /// <summary><c>[S]</c>: rows this rank sends to each rank (torchtitan's input_splits).</summary>
    public ImmutableArray<int> InputSplits { get; }

    /// <summary><c>[S]</c>: rows this rank receives from each rank (torchtitan's output_splits).</summary>
    public ImmutableArray<int> OutputSplits { get; }

    /// <summary><c>[E/S]</c>: rows per local expert, alignment padding included.</summary>
    public ImmutableArray<int> TokensPerLocalExpert { get; }

    /// <summary><c>[E]</c>: rows this rank routed to each expert (pad rows included).</summary>
    public ImmutableArray<int> ExpertCounts { get; }

    /// <summary>Rows sent in total (N, pad rows included).</summary>
    public int RowsSent => Local.SentRows;

    /// <summary>Rows received in total, before alignment padding.</summary>
    public int RowsReceived { get { int sum = 0; foreach (int s in OutputSplits) sum += s; return sum; } }

    /// <summary>Rows of the routed tensor (R), alignment padding included.</summary>
    public int RoutedRows { get { int sum = 0; foreach (int s in TokensPerLocalExpert) sum += s; return sum; } }

    internal TokenDispatcher Owner { get; }

    private int _released;

    /// <summary>True once <see cref="TokenDispatcher.Release"/> handed the metadata's tensors back.</summary>
    public bool IsReleased => Volatile.Read(ref _released) != 0;

    /// <summary>Marks the metadata released; false if it already was.</summary>
    internal bool MarkReleased() => Interlocked.Exchange(ref _released, 1) == 0;

    /// <summary>Shape of the dispatch's <c>x</c>.</summary>
    internal int[] InputShape { get; }

    internal LocalLayout Local { get; }

    /// <summary>Rank-major ↔ expert-major maps, or null when the received layout is already expert-major.</summary>
    internal ExpertMajorPermutation? Permutation { get; }

    /// <summary>Row of the dispatch's <c>x</c> (and of the replicated output) where the shard starts.</summary>
    internal int InputRowOffset { get; }
}

/// <summary>
/// Per-row maps of the local layout (see <see cref="DispatchMetadata"/>).
/// </summary>
/// <param name="Rows">Rows of the local layout.</param>
/// <param name="SentRows">Rows that carry an entry (real or SP pad); the rest are alignment pad rows.</param>
/// <param name="RowToken"><c>[Rows]</c> int32: shard-local token of each row, -1 for pad rows.</param>
/// <param name="RowScore"><c>[Rows]</c> float32: score of each row, 0 for pad rows.</param>
/// <param name="TokenPositions"><c>[T_s, K]</c> int32: each real token's rows, ascending (= ascending expert id).</param>
/// <param name="EntryRow"><c>[T_s·K]</c> int32: the row of entry (token, slot), in slot order.</param>
internal sealed record LocalLayout(int Rows, int SentRows, Tensor RowToken, Tensor RowScore, Tensor TokenPositions, Tensor EntryRow);

/// <summary>Maps between the received rank-major rows and the expert-major routed rows.</summary>
/// <param name="ExpertMajorRowOf"><c>[R]</c>: received row of each routed row, -1 for alignment pad rows.</param>
/// <param name="RankMajorRowOf"><c>[Rrecv]</c>: routed row of each received row.</param>
internal sealed record ExpertMajorPermutation(Tensor ExpertMajorRowOf, Tensor RankMajorRowOf);
