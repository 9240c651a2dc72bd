using System.Collections.Immutable;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// Everything a dispatch decides on the host from the routing counts alone, before any row moves (Megatron-Core's
/// preprocess): the splits of the row exchange, the resolved shard, each local expert's aligned row count, where the
/// sorted entries land in the local layout, and the blocks of the rank-major → expert-major permutation. Pure and
/// immutable: the same counts give the same plan on every rank and backend, and it is tested without ranks or kernels.
/// </summary>
/// <remarks>
/// E experts over S ranks, e = E/S local experts; N = (T_s + pad)·K entries this rank routes. The local layout is the
/// order of this rank's rows before they leave: the N entries sorted by expert. When rows do not move (EP = 1) it is
/// the routed layout itself, so each expert's run is padded to the alignment there (<see cref="RowOfSorted"/>);
/// otherwise the receiver pads while permuting (<see cref="BlockStart"/>, <see cref="BlockDestination"/>).
/// </remarks>
internal sealed record DispatchPlan
{
    private DispatchPlan() { }

    /// <summary>This rank's rows of the token axis, as the count exchange resolved them.</summary>
    public required SequenceShard Shard { get; init; }

    /// <summary>Row of the dispatch's <c>x</c> (and of the replicated output) where the shard starts.</summary>
    public required int InputRowOffset { get; init; }

    /// <summary><c>[E]</c>: entries this rank routes to each expert (SP pad entries counted on expert 0).</summary>
    public required ImmutableArray<int> ExpertCounts { get; init; }

    /// <summary><c>[S·e]</c>: rows rank p sends this rank for local expert j, at <c>p·e + j</c>.</summary>
    public required ImmutableArray<int> ReceiveCounts { get; init; }

    /// <summary><c>[S]</c>: rows this rank sends to each rank (torchtitan's input_splits).</summary>
    public required ImmutableArray<int> InputSplits { get; init; }

    /// <summary><c>[S]</c>: rows this rank receives from each rank (torchtitan's output_splits).</summary>
    public required ImmutableArray<int> OutputSplits { get; init; }

    /// <summary><c>[e]</c>: routed rows per local expert, alignment padding included.</summary>
    public required ImmutableArray<int> TokensPerLocalExpert { get; init; }

    /// <summary>N: entries this rank routes, which is the rows it sends (SP pad entries included).</summary>
    public required int SentRows { get; init; }

    /// <summary>Rows of the local layout: <see cref="SentRows"/>, plus alignment padding when rows do not
    /// move.</summary>
    public required int LocalRows { get; init; }

    /// <summary>
    /// <c>[N]</c>: the local-layout row of each expert-sorted position when each expert's run is padded to the
    /// alignment (rows do not move and the alignment exceeds 1); default (no array) for the identity.
    /// </summary>
    public required ImmutableArray<int> RowOfSorted { get; init; }

    /// <summary>Rows received in total, before alignment padding.</summary>
    public required int RowsReceived { get; init; }

    /// <summary>R: rows of the routed tensor, alignment padding included.</summary>
    public required int RoutedRows { get; init; }

    /// <summary>
    /// <c>[S·e + 1]</c>: block b = (source p, local expert j), <c>b = p·e + j</c>, is received rows
    /// <c>[BlockStart[b], BlockStart[b + 1])</c>, in the rank-major order they arrive in. Default (no array) when no
    /// permutation is needed: rows do not move, or one local expert without padding (rank-major is expert-major).
    /// </summary>
    public required ImmutableArray<int> BlockStart { get; init; }

    /// <summary>
    /// <c>[S·e]</c>: the routed (expert-major) row where block b's rows start: expert j's rows from sources 0, 1, … in
    /// order, after the padded runs of experts before j. Default exactly when <see cref="BlockStart"/> is.
    /// </summary>
    public required ImmutableArray<int> BlockDestination { get; init; }

    /// <summary>Whether received rows must be permuted into the expert-major layout (and back at combine).</summary>
    public bool NeedsPermutation => !BlockStart.IsDefault;

    /// <summary>
    /// The plan for one dispatch. Sizes are checked (64-bit) against what a tensor indexes, and large host tensors
    /// against the memory, before anything of that size is allocated.
    /// </summary>
    /// <param name="config">E, the alignment and the layout.</param>
    /// <param name="epSize">S: ranks of the EP group.</param>
    /// <param name="epRank">This rank (for messages).</param>
    /// <param name="rowsMove">Whether the exchange moves rows between ranks (EP &gt; 1).</param>
    /// <param name="shard">This rank's resolved shard.</param>
    /// <param name="expertCounts"><c>[E]</c> entries this rank routes per expert.</param>
    /// <param name="receiveCounts"><c>[S·e]</c> rows each rank sends this rank per local expert.</param>
    /// <param name="rows">The row shape, for the size checks.</param>
    /// <exception cref="SizeLimitException">The routed rows exceed what a tensor indexes or the memory.</exception>
    public static DispatchPlan Create(
        TokenDispatcherConfig config,
        int epSize,
        int epRank,
        bool rowsMove,
        SequenceShard shard,
        ReadOnlySpan<int> expertCounts,
        ReadOnlySpan<int> receiveCounts,
        RowFormat rows
    )
    {
        ArgumentNullException.ThrowIfNull(config);
        int e = config.NumExperts / epSize;
        if (expertCounts.Length != config.NumExperts || receiveCounts.Length != epSize * e)
        {
            throw new ArgumentException(
                $"{expertCounts.Length} expert counts and {receiveCounts.Length} receive counts for E = "
                    + $"{config.NumExperts} over S = {epSize} ranks (rank {epRank})"
            );
        }
        int[] received = receiveCounts.ToArray();
        // Sizes before allocation: the padded rows are checked (64-bit) against what a tensor indexes and the memory.
        int[] tokensPerLocalExpert = DispatchSizes.AlignedExpertRows(
            received,
            e,
            config.ExpertAlignment,
            rows.Dim,
            rows.Type,
            rows.OnHost,
            epRank
        );
        var inputSplits = new int[epSize];
        var outputSplits = new int[epSize];
        for (int q = 0; q < epSize; q++)
        {
            for (int j = 0; j < e; j++)
            {
                inputSplits[q] += expertCounts[q * e + j];
                outputSplits[q] += received[q * e + j];
            }
        }
        int sent = Sum(expertCounts),
            rowsReceived = Sum(received),
            routed = Sum(tokensPerLocalExpert);

        ImmutableArray<int> rowOfSorted = default;
        int localRows = sent;
        if (!rowsMove && config.ExpertAlignment > 1)
        {
            rowOfSorted = PaddedRuns(expertCounts, config.ExpertAlignment, out localRows);
        }
        (ImmutableArray<int> blockStart, ImmutableArray<int> blockDestination) =
            rowsMove && (e > 1 || routed != rowsReceived)
                ? PermutationBlocks(received, tokensPerLocalExpert, epSize)
                : (default, default);

        return new DispatchPlan
        {
            Shard = shard,
            InputRowOffset = config.Layout == SequenceLayout.Replicated ? shard.Start : 0,
            ExpertCounts = ImmutableArray.Create(expertCounts),
            ReceiveCounts = ImmutableArray.Create(received),
            InputSplits = ImmutableArray.Create(inputSplits),
            OutputSplits = ImmutableArray.Create(outputSplits),
            TokensPerLocalExpert = ImmutableArray.Create(tokensPerLocalExpert),
            SentRows = sent,
            LocalRows = localRows,
            RowOfSorted = rowOfSorted,
            RowsReceived = rowsReceived,
            RoutedRows = routed,
            BlockStart = blockStart,
            BlockDestination = blockDestination,
        };
    }

    /// <summary>
    /// This plan with every local expert's rows in a block of <paramref name="capacity"/> rows (expert j's i-th row
    /// at <c>j·capacity + i</c>, the rest of the block zero rows): the layout of the padded experts
    /// (<see cref="IRoutedRowPlacement"/>). Only where rows do not move, so the local layout is the routed one;
    /// <see cref="TokensPerLocalExpert"/> keeps the rows per expert, alignment padding included.
    /// </summary>
    /// <exception cref="InvalidOperationException">Rows move, or an expert's rows exceed the capacity.</exception>
    public DispatchPlan WithExpertCapacity(int capacity)
    {
        int e = TokensPerLocalExpert.Length;
        if (ExpertCounts.Length != e || SentRows != RowsReceived)
            throw new InvalidOperationException("expert blocks of a fixed capacity need rows that stay on the rank");
        var map = new int[SentRows];
        int position = 0;
        for (int j = 0; j < e; j++)
        {
            if (TokensPerLocalExpert[j] > capacity)
            {
                throw new InvalidOperationException(
                    $"expert {j} has {TokensPerLocalExpert[j]} rows, more than the capacity {capacity}"
                );
            }
            for (int r = 0; r < ExpertCounts[j]; r++)
                map[position++] = (j * capacity) + r;
        }
        int rows = checked(e * capacity);
        return this with { RowOfSorted = ImmutableArray.Create(map), LocalRows = rows, RoutedRows = rows };
    }

    /// <summary>
    /// The plan of a capacity-mode dispatch (<see cref="DispatchCapacity"/>), made without the counts: the first
    /// round's equal splits of C rows per peer, and the sizes of the fixed buffers. The counts, the rows per expert and
    /// the permutation stay on the device (<see cref="CapacityState"/>), so <see cref="ExpertCounts"/>,
    /// <see cref="ReceiveCounts"/> and <see cref="TokensPerLocalExpert"/> are empty.
    /// </summary>
    /// <param name="config">The layout.</param>
    /// <param name="epSize">S.</param>
    /// <param name="shard">This rank's shard.</param>
    /// <param name="sentRows">N: entries this rank routes.</param>
    /// <param name="rowsPerPeer">C (with one rank: the local rows).</param>
    /// <param name="localRows">Rows of the local layout: S·C plus this rank's overflow rows, or the routed rows when
    /// rows do not move.</param>
    /// <param name="rowsReceived">S·C plus the overflow rows received (the local rows when rows do not move).</param>
    /// <param name="routedRows">Rows of the routed tensor.</param>
    public static DispatchPlan ForCapacity(
        TokenDispatcherConfig config,
        int epSize,
        SequenceShard shard,
        int sentRows,
        int rowsPerPeer,
        int localRows,
        int rowsReceived,
        int routedRows
    )
    {
        ArgumentNullException.ThrowIfNull(config);
        ImmutableArray<int> splits = ImmutableArray.CreateRange(Enumerable.Repeat(rowsPerPeer, epSize));
        return new DispatchPlan
        {
            Shard = shard,
            InputRowOffset = config.Layout == SequenceLayout.Replicated ? shard.Start : 0,
            ExpertCounts = [],
            ReceiveCounts = [],
            InputSplits = splits,
            OutputSplits = splits,
            TokensPerLocalExpert = [],
            SentRows = sentRows,
            LocalRows = localRows,
            RowOfSorted = default,
            RowsReceived = rowsReceived,
            RoutedRows = routedRows,
            BlockStart = default,
            BlockDestination = default,
        };
    }

    /// <summary>
    /// Where each sorted position lands when each expert's run is followed by zero rows up to a multiple of
    /// <paramref name="alignment"/>; <paramref name="rows"/> is the padded total.
    /// </summary>
    private static ImmutableArray<int> PaddedRuns(ReadOnlySpan<int> counts, int alignment, out int rows)
    {
        var map = new int[Sum(counts)];
        // The padded total was checked against the tensor limit with the counts (DispatchSizes), so ints do not wrap.
        int position = 0,
            row = 0;
        foreach (int c in counts)
        {
            for (int r = 0; r < c; r++)
                map[position++] = row + r;
            row = checked(row + (int)DispatchSizes.AlignUp(c, alignment));
        }
        rows = row;
        return ImmutableArray.Create(map);
    }

    /// <summary>
    /// Block (p, j) = the rows from source p for local expert j: where it starts in the received buffer (rank-major)
    /// and in the routed rows (expert-major: expert j's rows from sources 0, 1, … in order). The row maps follow on
    /// the backend from these S·e runs.
    /// </summary>
    private static (ImmutableArray<int> Start, ImmutableArray<int> Destination) PermutationBlocks(
        int[] receiveCounts,
        int[] tokensPerLocalExpert,
        int epSize
    )
    {
        int e = tokensPerLocalExpert.Length;
        var blockStart = new int[epSize * e + 1];
        for (int b = 0; b < epSize * e; b++)
            blockStart[b + 1] = blockStart[b] + receiveCounts[b];
        var next = new int[e];
        for (int j = 1; j < e; j++)
            next[j] = next[j - 1] + tokensPerLocalExpert[j - 1];
        var blockDestination = new int[epSize * e];
        for (int p = 0; p < epSize; p++)
        {
            for (int j = 0; j < e; j++)
            {
                blockDestination[p * e + j] = next[j];
                next[j] += receiveCounts[p * e + j];
            }
        }
        return (ImmutableArray.Create(blockStart), ImmutableArray.Create(blockDestination));
    }

    private static int Sum(ReadOnlySpan<int> values)
    {
        int sum = 0;
        foreach (int v in values)
            sum += v;
        return sum;
    }
}

/// <summary>The shape of a dispatch's rows, for the plan's size checks.</summary>
/// <param name="Dim">D: elements per row.</param>
/// <param name="Type">The row dtype.</param>
/// <param name="OnHost">Whether rows live in host memory (the host-memory check applies).</param>
internal readonly record struct RowFormat(int Dim, DType Type, bool OnHost);
