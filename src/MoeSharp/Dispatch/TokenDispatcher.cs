using System.Collections.Immutable;
using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// torchtitan's token dispatcher: routes each token's K (row, score, expert) entries to the ranks that own
/// the experts and combines the expert outputs back, forward and backward. The local steps are written
/// once here against <see cref="IMoeKernels"/>; subclasses supply the exchanges
/// (<see cref="LocalTokenDispatcher"/> for EP = 1, <see cref="AllToAllTokenDispatcher"/> for EP &gt; 1).
/// </summary>
/// <remarks>
/// Each token's output is its terms added from zero (or the shared experts' output) in ascending expert id,
/// an ordered gather-reduce with no atomics, so the final output is bitwise identical for every EP size, SP
/// size, sharding policy, sequence layout and alignment when the experts are row-wise deterministic.
/// <para>
/// Rows are float32 or bfloat16: the dtype of <c>x</c> is the dtype of every row tensor of the dispatch (the
/// exchanges move half the bytes in bfloat16). Arithmetic is float32 either way: a score multiply widens the
/// row, multiplies in float32 and rounds once to bfloat16 (design §1 step 2); combine adds a token's terms in
/// a float32 accumulator and rounds once at the end, so a bfloat16 result is the float32 result of the
/// widened inputs, rounded (to nearest even).
/// </para>
/// </remarks>
public abstract class TokenDispatcher
{
    private protected TokenDispatcher(TokenDispatcherConfig config, int epSize, int epRank, int spSize, int spRank, IMoeKernels? kernels, TensorPool? pool)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.NumExperts % epSize != 0)
        {
            throw new ArgumentException(
                $"the number of experts E = {config.NumExperts} must be divisible by the EP size {epSize} (rank {epRank})", nameof(config));
        }
        if (config.TopK > config.NumExperts)
        {
            throw new ArgumentException($"top-k K = {config.TopK} exceeds the number of experts E = {config.NumExperts}", nameof(config));
        }
        Config = config;
        EpSize = epSize;
        EpRank = epRank;
        SpSize = spSize;
        SpRank = spRank;
        Kernels = kernels ?? new HostMoeKernels(pool);
    }

    /// <summary>What this dispatcher routes and how.</summary>
    public TokenDispatcherConfig Config { get; }

    /// <summary>S: ranks of the EP group.</summary>
    public int EpSize { get; }

    /// <summary>This rank's index in the EP group.</summary>
    public int EpRank { get; }

    /// <summary>Ranks of this rank's SP group.</summary>
    public int SpSize { get; }

    /// <summary>This rank's index in its SP group.</summary>
    public int SpRank { get; }

    /// <summary>E/S: experts this rank owns (global ids <c>[EpRank·E/S, (EpRank+1)·E/S)</c>).</summary>
    public int NumLocalExperts => Config.NumExperts / EpSize;

    /// <summary>The compute backend: where the tensors live and the kernels that run on them.</summary>
    public IMoeKernels Kernels { get; }

    /// <summary>
    /// Where this dispatcher's tensors come from (the backend's allocator). Its outputs (routed rows, combine
    /// output, gradients) are rented here: hand them back with <see cref="ITensorAllocator.Return"/> once used,
    /// and call <see cref="Release"/> for a dispatch's metadata, so steady-state calls reuse warm memory.
    /// </summary>
    public ITensorAllocator Pool => Kernels.Allocator;

    /// <summary>
    /// Routes this rank's tokens to their experts.
    /// </summary>
    /// <param name="x">
    /// float32 or bfloat16 tokens (the routed rows keep this dtype): <c>[T, D]</c>, the whole sequence, in the replicated layout; <c>[T_s, D]</c>, this rank's
    /// shard, in the sharded layout.
    /// </param>
    /// <param name="topScores"><c>[T, K]</c> (or <c>[T_s, K]</c>) float32 routing scores, finite.</param>
    /// <param name="expertIds"><c>[T, K]</c> (or <c>[T_s, K]</c>) int32 or int64 expert ids in <c>[0, E)</c>.</param>
    /// <param name="totalTokens">
    /// T of the whole sequence. Needed in the sharded layout with <see cref="SpShardingPolicy.PadToMultiple"/>
    /// and SP &gt; 1 (a rank cannot tell its pad rows from its own shard alone); checked when given otherwise.
    /// </param>
    /// <exception cref="ArgumentException">Bad shapes or dtypes, an expert id outside <c>[0, E)</c> (the message names the token,
    /// slot and value), a non-finite score, or ranks of an SP group that disagree on T. Where counts are exchanged on the
    /// device, the other ranks throw too, naming the rank whose entry was invalid.</exception>
    public DispatchResult Dispatch(Tensor x, Tensor topScores, Tensor expertIds, int? totalTokens = null)
    {
        ValidateShapes(x, topScores, expertIds);
        if (Config.CheckReplicatedInputs && Config.Layout == SequenceLayout.Replicated && SpSize > 1) CheckReplicasAgree(topScores, expertIds);
        SequenceShard shard = ResolveShard(x.Rows, totalTokens);
        int inputRowOffset = Config.Layout == SequenceLayout.Replicated ? shard.Start : 0;
        int k = Config.TopK;
        int entries = DispatchSizes.Entries(shard.Rows, k, EpRank);

        Tensor ids = Pool.Rent(DType.Int32, entries);
        Tensor entryScores = Pool.Rent(DType.Float32, entries);
        EntryScan scan;
        ExchangedCounts? exchangedOnDevice = null;
        if (ExchangesCountsOnDevice)
        {
            // Scan, count messages and their exchange stay on the device; one copy brings both scans' results back.
            DeviceCountExchange device = ScanAndExchangeCountsOnDevice(topScores, expertIds, inputRowOffset, shard, totalTokens, ids, entryScores);
            scan = device.Scan;
            exchangedOnDevice = device.Exchanged;
            if (scan.FirstInvalidEntry < 0 && device.FirstInvalidRank >= 0)
            {
                Pool.Return(ids);
                Pool.Return(entryScores);
                throw new PeerRankException(
                    $"rank {device.FirstInvalidRank} passed an invalid routing entry (an expert id outside [0, {Config.NumExperts}) or a non-finite score; its own error names it), so no rank dispatches (rank {EpRank})",
                    WorldRankOf(device.FirstInvalidRank), nameof(expertIds));
            }
        }
        else
        {
            scan = Kernels.PrepareEntries(topScores, expertIds, inputRowOffset, shard.RealRows, shard.PadRows, Config.NumExperts, ids, entryScores);
        }
        if (scan.FirstInvalidEntry >= 0)
        {
            Pool.Return(ids);
            Pool.Return(entryScores);
            ThrowInvalidEntry(scan, inputRowOffset);
        }
        int[] counts = scan.Counts;
        Tensor order = Pool.Rent(DType.Int32, entries);
        Kernels.StableSortByExpert(ids, counts, order);
        Pool.Return(ids);

        ExchangedCounts exchanged = exchangedOnDevice ?? ExchangeCounts(counts, shard, totalTokens);
        shard = exchanged.Shard;
        int e = NumLocalExperts;
        var receiveCounts = exchanged.ReceiveCounts;
        var inputSplits = new int[EpSize];
        var outputSplits = new int[EpSize];
        // Sizes before allocation: the padded rows are checked (64-bit) against what a tensor indexes and the memory.
        int[] tokensPerLocalExpert = DispatchSizes.AlignedExpertRows(receiveCounts, e, Config.ExpertAlignment, x.RowLength, x.DType,
            Kernels.IsHost, EpRank);
        for (int q = 0; q < EpSize; q++)
        {
            for (int j = 0; j < e; j++)
            {
                inputSplits[q] += counts[q * e + j];
                outputSplits[q] += receiveCounts[q * e + j];
            }
        }

        // With EP = 1 the local layout is the routed tensor itself (alignment folded into the gather);
        // otherwise it is the expert-sorted send buffer.
        bool exchanges = EpSize > 1;
        LocalLayout local = BuildLocalLayout(order, counts, entryScores, shard.RealRows, alignExperts: !exchanges);
        Pool.Return(order);
        Pool.Return(entryScores);
        int dim = x.RowLength;
        Tensor gathered = Pool.Rent(x.DType, local.Rows, dim);
        Kernels.ScatterTokenRows(x, inputRowOffset, local.RowToken, local.EntryRow, Config.TopK,
            Config.ScoreBeforeExperts ? local.RowScore : null, gathered);

        ExpertMajorPermutation? permutation = exchanges ? BuildPermutation(receiveCounts, tokensPerLocalExpert) : null;
        var metadata = new DispatchMetadata(this, shard, x.ShapeArray(), inputRowOffset, dim, x.DType,
            ImmutableArray.Create(inputSplits), ImmutableArray.Create(outputSplits),
            ImmutableArray.Create(tokensPerLocalExpert), ImmutableArray.Create(counts), local, permutation);
        Tensor routed = gathered;
        if (exchanges)
        {
            routed = ToExpertMajor(gathered, metadata);
            Pool.Return(gathered);
        }
        return new DispatchResult(routed, metadata.TokensPerLocalExpert, metadata);
    }

    /// <summary>
    /// Sends the experts' outputs back and adds each token's terms in ascending expert id.
    /// </summary>
    /// <param name="routedOutput"><c>[R, D]</c> expert outputs in the dispatch's row dtype, in the layout dispatch returned.</param>
    /// <param name="metadata">The dispatch's metadata.</param>
    /// <param name="x">The dispatch's <c>x</c> (its own rows feed <paramref name="sharedExperts"/>).</param>
    /// <param name="sharedExperts">Optional shared experts, run while the exchange is in flight; they return the row dtype.</param>
    /// <returns>In the row dtype. Replicated layout: <c>[T, D]</c> with only this rank's shard filled; sharded: <c>[T_s, D]</c>.</returns>
    public Tensor Combine(Tensor routedOutput, DispatchMetadata metadata, Tensor x, SharedExpertsFunction? sharedExperts = null)
    {
        CombineResult result = CombineWithState(routedOutput, metadata, x, sharedExperts);
        // No backward will read the received rows: their storage can serve the next call.
        if (!ReferenceEquals(result.State.CombinedRows, routedOutput)) Pool.Return(result.State.CombinedRows);
        return result.Output;
    }

    /// <summary><see cref="Combine"/>, also returning what <see cref="CombineBackward"/> needs.</summary>
    public CombineResult CombineWithState(Tensor routedOutput, DispatchMetadata metadata, Tensor x, SharedExpertsFunction? sharedExperts = null)
    {
        CheckMetadata(metadata);
        CheckRows(routedOutput, nameof(routedOutput), metadata);
        CheckSameShape(x, nameof(x), metadata.InputShape, metadata.RowType);

        Tensor localRows;
        Tensor? send = null;
        CollectiveRequest pending = CollectiveRequest.Completed;
        if (EpSize == 1)
        {
            localRows = routedOutput;
        }
        else
        {
            send = ToRankMajor(routedOutput, metadata);
            localRows = Pool.Rent(metadata.RowType, metadata.Local.Rows, metadata.Dim);
            pending = ExchangeRowsAsync(send, metadata.OutputSplits.AsSpan(), localRows, metadata.InputSplits.AsSpan());
        }

        Tensor? shared;
        try
        {
            shared = sharedExperts is null ? null : RunSharedExperts(sharedExperts, x, metadata);
        }
        catch
        {
            // Let the exchange finish so peers are not left waiting on this rank's buffers.
            try { pending.Wait(); } catch (CollectiveException) { }
            throw;
        }
        pending.Wait();
        if (send is not null && !ReferenceEquals(send, routedOutput)) Pool.Return(send);

        Tensor output = NewOutput(metadata);
        Kernels.GatherReduce(localRows, metadata.Local.TokenPositions, Config.ScoreBeforeExperts ? null : metadata.Local.RowScore,
            shared, output, metadata.InputRowOffset);
        return new CombineResult(output, new CombineState(metadata, localRows));
    }

    /// <summary>
    /// Backward of <see cref="Combine"/>: sends each token's output gradient to the rows that produced it
    /// (dispatch's exchange).
    /// </summary>
    /// <param name="gradOutput">Gradient of the combine output, shaped like it (in the replicated layout, the
    /// gradient of the SP-summed result, which is the same on every SP rank).</param>
    /// <param name="state">From <see cref="CombineWithState"/>.</param>
    public CombineBackwardResult CombineBackward(Tensor gradOutput, CombineState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        DispatchMetadata metadata = state.Metadata;
        CheckMetadata(metadata);
        CheckSameShape(gradOutput, nameof(gradOutput), OutputShape(metadata), metadata.RowType);

        LocalLayout local = metadata.Local;
        bool scoreAfter = !Config.ScoreBeforeExperts;
        Tensor gathered = Pool.Rent(metadata.RowType, local.Rows, metadata.Dim);
        Kernels.ScatterTokenRows(gradOutput, metadata.InputRowOffset, local.RowToken, local.EntryRow, Config.TopK,
            scoreAfter ? local.RowScore : null, gathered);
        Tensor? gradScores = scoreAfter ? ScoreGradients(state.CombinedRows, gradOutput, metadata) : null;
        Tensor gradRouted = gathered;
        if (EpSize > 1)
        {
            gradRouted = ToExpertMajor(gathered, metadata);
            Pool.Return(gathered);
        }
        return new CombineBackwardResult(gradRouted, gradScores);
    }

    /// <summary>
    /// Backward of <see cref="Dispatch"/>: sends the gradient of the routed rows back to their tokens
    /// (combine's exchange) and sums each token's terms in ascending expert id.
    /// </summary>
    /// <param name="gradRoutedTokens"><c>[R, D]</c>: gradient of the routed rows, expert-major.</param>
    /// <param name="metadata">The dispatch's metadata.</param>
    /// <param name="x">The dispatch's <c>x</c> (for the score gradient when scores multiply before the experts).</param>
    public DispatchBackwardResult DispatchBackward(Tensor gradRoutedTokens, DispatchMetadata metadata, Tensor x)
    {
        CheckMetadata(metadata);
        CheckRows(gradRoutedTokens, nameof(gradRoutedTokens), metadata);
        CheckSameShape(x, nameof(x), metadata.InputShape, metadata.RowType);

        Tensor localRows = gradRoutedTokens;
        if (EpSize > 1)
        {
            Tensor send = ToRankMajor(gradRoutedTokens, metadata);
            localRows = Pool.Rent(metadata.RowType, metadata.Local.Rows, metadata.Dim);
            ExchangeRows(send, metadata.OutputSplits.AsSpan(), localRows, metadata.InputSplits.AsSpan());
            if (!ReferenceEquals(send, gradRoutedTokens)) Pool.Return(send);
        }
        Tensor gradX = NewOutput(metadata);
        Kernels.GatherReduce(localRows, metadata.Local.TokenPositions, Config.ScoreBeforeExperts ? metadata.Local.RowScore : null,
            null, gradX, metadata.InputRowOffset);
        Tensor? gradScores = Config.ScoreBeforeExperts ? ScoreGradients(localRows, x, metadata) : null;
        if (!ReferenceEquals(localRows, gradRoutedTokens)) Pool.Return(localRows);
        return new DispatchBackwardResult(gradX, gradScores);
    }

    /// <summary>
    /// Hands a dispatch's metadata tensors back to <see cref="Pool"/> once its combine and backward are done;
    /// the metadata cannot be used afterwards. Optional: unreleased metadata is collected by the GC.
    /// </summary>
    public void Release(DispatchMetadata metadata)
    {
        CheckMetadata(metadata);
        if (!metadata.MarkReleased()) return;
        Pool.Return(metadata.Local.RowToken);
        Pool.Return(metadata.Local.RowScore);
        Pool.Return(metadata.Local.TokenPositions);
        Pool.Return(metadata.Local.EntryRow);
        if (metadata.Permutation is { } permutation)
        {
            Pool.Return(permutation.ExpertMajorRowOf);
            Pool.Return(permutation.RankMajorRowOf);
        }
    }

    /// <summary>
    /// The SP group's sum of per-rank outputs (the tensor-parallel reduce of the replicated layout), in SP-rank
    /// order so every rank gets the same bits. Returns a new tensor; in the sharded layout, or with SP = 1, the
    /// input itself (nothing to reduce).
    /// </summary>
    /// <param name="partial">A combine output (or a gradient of x), shaped <c>[T, D]</c>.</param>
    public Tensor ReduceSequenceParallel(Tensor partial)
    {
        ArgumentNullException.ThrowIfNull(partial);
        if (Config.Layout == SequenceLayout.Sharded || SpSize == 1) return partial;
        Tensor sum = Pool.Rent(partial.DType, partial.ShapeArray());
        Kernels.CopyRows(partial, 0, sum, 0, partial.Rows);
        SumOverSequenceParallel(sum);
        return sum;
    }

    /// <summary>The counts this rank receives and its shard, after any cross-rank checks.</summary>
    private protected readonly record struct ExchangedCounts(int[] ReceiveCounts, SequenceShard Shard);

    /// <summary>
    /// Count exchange: all-to-all of <paramref name="counts"/> viewed <c>[S, E/S]</c>. Implementations also
    /// check that the SP group agrees on T (and complete <paramref name="shard"/> where T was unknown).
    /// </summary>
    private protected abstract ExchangedCounts ExchangeCounts(int[] counts, SequenceShard shard, int? declaredTotalTokens);

    /// <summary>What a device count exchange found: this rank's scan, the exchanged counts (null when any rank's scan failed) and the first rank with an invalid entry, or -1.</summary>
    private protected readonly record struct DeviceCountExchange(EntryScan Scan, ExchangedCounts? Exchanged, int FirstInvalidRank);

    /// <summary>Whether <see cref="ScanAndExchangeCountsOnDevice"/> replaces the scan's copy to the host and the host count exchange.</summary>
    private protected virtual bool ExchangesCountsOnDevice => false;

    /// <summary>
    /// The entry scan and the count exchange on the device (<c>IMoeKernels.ScanEntries</c>, <c>PackCountMessages</c>, a
    /// device all-to-all) with one device-to-host copy for this rank's scan and every rank's counts together. Every
    /// rank learns whether any rank's entries were invalid, so all of them throw instead of some waiting.
    /// </summary>
    private protected virtual DeviceCountExchange ScanAndExchangeCountsOnDevice(Tensor topScores, Tensor expertIds, int rowOffset, SequenceShard shard,
        int? declaredTotalTokens, Tensor ids, Tensor entryScores)
        => throw new NotSupportedException($"{GetType().Name} exchanges counts on the host");

    /// <summary>The world rank of EP rank <paramref name="epRank"/> (the same rank unless the EP group is a sub-group).</summary>
    private protected virtual int WorldRankOf(int epRank) => epRank;

    /// <summary>
    /// Checks that the SP group's replicated copies of the routing agree (<see cref="TokenDispatcherConfig.CheckReplicatedInputs"/>);
    /// every rank throws the same error when they do not. Nothing to check without SP ranks.
    /// </summary>
    private protected virtual void CheckReplicasAgree(Tensor topScores, Tensor expertIds)
    {
    }

    /// <summary>All-to-all-v of rows: <paramref name="sendRows"/>[q] rows to rank q, <paramref name="receiveRows"/>[p] from rank p.</summary>
    private protected abstract void ExchangeRows(Tensor send, ReadOnlySpan<int> sendRows, Tensor receive, ReadOnlySpan<int> receiveRows);

    /// <summary>Starts <see cref="ExchangeRows"/> and returns at once.</summary>
    private protected abstract CollectiveRequest ExchangeRowsAsync(Tensor send, ReadOnlySpan<int> sendRows, Tensor receive, ReadOnlySpan<int> receiveRows);

    /// <summary>Sums <paramref name="values"/> over the SP group in place, in SP-rank order.</summary>
    private protected abstract void SumOverSequenceParallel(Tensor values);

    /// <summary>This rank's shard before any exchange; subclasses may complete it from the count exchange.</summary>
    private protected virtual SequenceShard ResolveShard(int inputRows, int? totalTokens)
    {
        if (totalTokens is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(totalTokens), totalTokens, "the total token count T must not be negative");
        }
        if (Config.Layout == SequenceLayout.Replicated)
        {
            if (totalTokens is int t && t != inputRows)
            {
                throw new ArgumentException(
                    $"totalTokens = {t} but x has {inputRows} rows, and in the replicated layout x holds every token (rank {EpRank})", nameof(totalTokens));
            }
            return SequenceShard.For(Config.Sharding, inputRows, SpSize, SpRank);
        }
        if (SpSize == 1)
        {
            if (totalTokens is int t && t != inputRows)
            {
                throw new ArgumentException($"totalTokens = {t} but x has {inputRows} rows and the SP size is 1 (rank {EpRank})", nameof(totalTokens));
            }
            return new SequenceShard(inputRows, 0, inputRows, 0);
        }
        if (totalTokens is int total)
        {
            SequenceShard expected = SequenceShard.For(Config.Sharding, total, SpSize, SpRank);
            if (expected.RealRows != inputRows)
            {
                throw new ArgumentException(
                    $"x has {inputRows} rows but SP rank {SpRank} of {SpSize} holds {expected.RealRows} of T = {total} tokens under {Config.Sharding} sharding (rank {EpRank})",
                    "x");
            }
            return expected;
        }
        if (Config.Sharding == SpShardingPolicy.PadToMultiple)
        {
            throw new ArgumentException(
                $"the sharded layout with PadToMultiple sharding and SP = {SpSize} needs totalTokens: a rank cannot tell its pad rows from its shard alone (rank {EpRank})",
                nameof(totalTokens));
        }
        // Balanced sharding without T: the count exchange learns T and the shard's start.
        return new SequenceShard(-1, -1, inputRows, 0);
    }

    private void ValidateShapes(Tensor x, Tensor topScores, Tensor expertIds)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(topScores);
        ArgumentNullException.ThrowIfNull(expertIds);
        if ((x.DType != DType.Float32 && x.DType != DType.BFloat16) || x.Rank != 2)
        {
            throw new ArgumentException($"x must be a float32 or bfloat16 [T, D] tensor; got {x.DType} {x.ShapeString} (rank {EpRank})", nameof(x));
        }
        int t = x.Dim(0), k = Config.TopK;
        if (topScores.DType != DType.Float32 || topScores.Rank != 2 || topScores.Dim(0) != t || topScores.Dim(1) != k)
        {
            throw new ArgumentException($"topScores must be float32 [{t}, {k}] (T from x, K from the config); got {topScores.DType} {topScores.ShapeString} (rank {EpRank})", nameof(topScores));
        }
        if ((expertIds.DType != DType.Int32 && expertIds.DType != DType.Int64) || expertIds.Rank != 2 || expertIds.Dim(0) != t || expertIds.Dim(1) != k)
        {
            throw new ArgumentException($"expertIds must be int32 or int64 [{t}, {k}]; got {expertIds.DType} {expertIds.ShapeString} (rank {EpRank})", nameof(expertIds));
        }
    }

    /// <summary>Throws the error for the first invalid entry <see cref="IMoeKernels.PrepareEntries"/> found.</summary>
    private void ThrowInvalidEntry(EntryScan scan, int rowOffset)
    {
        int k = Config.TopK;
        int token = rowOffset + scan.FirstInvalidEntry / k, slot = scan.FirstInvalidEntry % k;
        if ((ulong)scan.InvalidId >= (ulong)Config.NumExperts)
        {
            throw new ArgumentOutOfRangeException("expertIds", scan.InvalidId,
                $"expertIds[token {token}, slot {slot}] = {scan.InvalidId} is outside [0, {Config.NumExperts}) (rank {EpRank})");
        }
        throw new ArgumentException(
            $"topScores[token {token}, slot {slot}] = {scan.InvalidScore} is not finite (rank {EpRank})", "topScores");
    }

    /// <summary>
    /// Per-row maps of the local layout: sorted position i holds entry <c>order[i]</c>; with
    /// <paramref name="alignExperts"/> each expert's run is followed by zero rows up to the alignment.
    /// </summary>
    private LocalLayout BuildLocalLayout(Tensor order, int[] counts, Tensor entryScores, int realTokens, bool alignExperts)
    {
        int entries = order.ElementCount, k = Config.TopK;

        // rowOfSorted: where sorted position i lands in the local layout (identity unless aligning). It follows
        // from the counts alone, which the host has, so it is built here and copied to the device.
        int rows = entries;
        Tensor? rowOfSorted = null;
        if (alignExperts && Config.ExpertAlignment > 1)
        {
            var map = new int[entries];
            // The total was checked against the tensor limit with the counts (DispatchSizes), so ints do not wrap here.
            int position = 0, row = 0;
            foreach (int c in counts)
            {
                for (int r = 0; r < c; r++) map[position++] = row + r;
                row = checked(row + (int)DispatchSizes.AlignUp(c, Config.ExpertAlignment));
            }
            rows = row;
            rowOfSorted = Kernels.ToDevice(Tensor.FromArray(map, entries));
        }

        Tensor rowToken = Pool.Rent(DType.Int32, rows);
        Tensor rowScore = Pool.Rent(DType.Float32, rows);
        Tensor entryRow = Pool.Rent(DType.Int32, realTokens * k);
        Tensor positions = Pool.Rent(DType.Int32, realTokens, k);
        Kernels.BuildLocalLayout(order, entryScores, realTokens, k, rowOfSorted, rowToken, rowScore, entryRow, positions);
        if (rowOfSorted is not null && !rowOfSorted.IsOnHost) Pool.Return(rowOfSorted);
        return new LocalLayout(rows, entries, rowToken, rowScore, positions, entryRow);
    }

    /// <summary>Maps from the received rank-major layout to the expert-major (aligned) routed layout.</summary>
    private ExpertMajorPermutation? BuildPermutation(int[] receiveCounts, int[] tokensPerLocalExpert)
    {
        int e = NumLocalExperts, s = EpSize;
        int received = 0, routed = 0;
        foreach (int c in receiveCounts) received += c;
        foreach (int c in tokensPerLocalExpert) routed += c;
        if (e == 1 && routed == received) return null;

        // Block (p, j) = the rows from source p for local expert j: where it starts in the received buffer (rank-major)
        // and in the routed rows (expert-major: expert j's rows from sources 0, 1, … in order). The row maps follow on
        // the backend from these S·e runs.
        var blockStart = new int[s * e + 1];
        for (int b = 0; b < s * e; b++) blockStart[b + 1] = blockStart[b] + receiveCounts[b];
        var next = new int[e];
        for (int j = 1; j < e; j++) next[j] = next[j - 1] + tokensPerLocalExpert[j - 1];
        var blockDestination = new int[s * e];
        for (int p = 0; p < s; p++)
        {
            for (int j = 0; j < e; j++)
            {
                blockDestination[p * e + j] = next[j];
                next[j] += receiveCounts[p * e + j];
            }
        }
        Tensor expertMajor = Pool.Rent(DType.Int32, routed);
        Tensor rankMajor = Pool.Rent(DType.Int32, received);
        Kernels.BuildPermutation(blockStart, blockDestination, expertMajor, rankMajor);
        return new ExpertMajorPermutation(expertMajor, rankMajor);
    }

    /// <summary>Forward exchange: local-layout rows to this rank's experts, expert-major.</summary>
    private Tensor ToExpertMajor(Tensor localRows, DispatchMetadata metadata)
    {
        Tensor received = Pool.Rent(metadata.RowType, metadata.RowsReceived, metadata.Dim);
        ExchangeRows(localRows, metadata.InputSplits.AsSpan(), received, metadata.OutputSplits.AsSpan());
        if (metadata.Permutation is null) return received;
        Tensor routed = Pool.Rent(metadata.RowType, metadata.RoutedRows, metadata.Dim);
        Kernels.GatherRows(received, 0, metadata.Permutation.ExpertMajorRowOf, null, routed);
        Pool.Return(received);
        return routed;
    }

    /// <summary>Inverse permute: expert-major rows back to the rank-major order they arrived in (pads dropped).</summary>
    private Tensor ToRankMajor(Tensor routedRows, DispatchMetadata metadata)
    {
        if (metadata.Permutation is null) return routedRows;
        Tensor send = Pool.Rent(metadata.RowType, metadata.RowsReceived, metadata.Dim);
        Kernels.GatherRows(routedRows, 0, metadata.Permutation.RankMajorRowOf, null, send);
        return send;
    }

    private Tensor? RunSharedExperts(SharedExpertsFunction sharedExperts, Tensor x, DispatchMetadata metadata)
    {
        int n = metadata.Shard.RealRows, d = metadata.Dim;
        Tensor own = x;
        if (x.Rows != n)
        {
            own = Pool.Rent(metadata.RowType, n, d);
            Kernels.CopyRows(x, metadata.InputRowOffset, own, 0, n);
        }
        Tensor result = sharedExperts(own) ?? throw new InvalidOperationException("the shared experts returned null");
        if (result.DType != metadata.RowType || result.Rank != 2 || result.Dim(0) != n || result.Dim(1) != d)
        {
            throw new InvalidOperationException(
                $"the shared experts must return {metadata.RowType} [{n}, {d}] for this rank's {n} tokens; got {result.DType} {result.ShapeString} (rank {EpRank})");
        }
        return result;
    }

    /// <summary>Gradient of each (token, slot) score: the dot of the entry's row with the token's row of <paramref name="tokenRows"/>.</summary>
    private Tensor ScoreGradients(Tensor localRows, Tensor tokenRows, DispatchMetadata metadata)
    {
        int k = Config.TopK;
        Tensor grad = Pool.Rent(DType.Float32, metadata.InputShape[0], k);
        Kernels.Clear(grad);
        Kernels.RowDots(localRows, metadata.Local.EntryRow, tokenRows, metadata.InputRowOffset, k, grad, metadata.InputRowOffset * k);
        return grad;
    }

    private Tensor NewOutput(DispatchMetadata metadata)
    {
        int[] shape = OutputShape(metadata);
        Tensor output = Pool.Rent(metadata.RowType, shape);
        // The replicated output has rows outside this shard, which stay zero.
        if (shape[0] != metadata.Shard.RealRows) Kernels.Clear(output);
        return output;
    }

    private static int[] OutputShape(DispatchMetadata metadata) => [metadata.InputShape[0], metadata.Dim];

    private void CheckMetadata(DispatchMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (!ReferenceEquals(metadata.Owner, this))
        {
            throw new ArgumentException($"the metadata comes from another dispatcher (rank {EpRank})", nameof(metadata));
        }
        if (metadata.IsReleased)
        {
            throw new ArgumentException($"the metadata was released (rank {EpRank})", nameof(metadata));
        }
    }

    private void CheckRows(Tensor rows, string name, DispatchMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(rows, name);
        int expectedRows = metadata.RoutedRows, dim = metadata.Dim;
        if (rows.DType != metadata.RowType || rows.Rank != 2 || rows.Dim(0) != expectedRows || rows.Dim(1) != dim)
        {
            throw new ArgumentException(
                $"{name} must be {metadata.RowType} [{expectedRows}, {dim}] as dispatched; got {rows.DType} {rows.ShapeString} (rank {EpRank})", name);
        }
    }

    private void CheckSameShape(Tensor tensor, string name, int[] shape, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        if (tensor.DType != dtype || !tensor.Shape.SequenceEqual(shape))
        {
            throw new ArgumentException(
                $"{name} must be {dtype} [{string.Join(", ", shape)}] as at dispatch; got {tensor.DType} {tensor.ShapeString} (rank {EpRank})", name);
        }
    }
}
