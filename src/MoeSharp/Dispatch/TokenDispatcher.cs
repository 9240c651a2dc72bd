using System.Runtime.InteropServices;
using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Compute.Rows;
using MoeSharp.Telemetry;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// torchtitan's token dispatcher: routes each token's K (row, score, expert) entries to the ranks that own the experts
/// and combines the expert outputs back, forward and backward. Each pass reads top to bottom in Megatron-Core's phases:
/// preprocess (validate, scan and count the entries, exchange the counts, plan), exchange (the rows, through an
/// <see cref="ITokenExchange"/>), postprocess (permute, or the ordered reduce). The local steps run on
/// <see cref="IMoeKernels"/>; <see cref="LocalTokenDispatcher"/> (EP = 1) and <see cref="AllToAllTokenDispatcher"/>
/// (EP &gt; 1) only choose the exchange.
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
/// <para>
/// Every call rents its tensors through a <see cref="TensorScope"/>: what it returns is kept, everything else goes back
/// to <see cref="Allocator"/> when the call ends, also when it throws.
/// </para>
/// </remarks>
public partial class TokenDispatcher
{
    private readonly ITokenExchange _exchange;

    /// <summary>The FP8 row kernels when <see cref="TokenDispatcherConfig.WireFormat"/> is FP8, else null.</summary>
    private readonly IFp8RowKernels? _fp8;

    private protected TokenDispatcher(
        TokenDispatcherConfig config,
        int epSize,
        int epRank,
        int spSize,
        int spRank,
        IMoeKernels? kernels,
        TensorPool? pool,
        Func<IMoeKernels, ITokenExchange> exchange
    )
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.NumExperts % epSize != 0)
        {
            throw new ArgumentException(
                $"the number of experts E = {config.NumExperts} must be divisible by the EP size {epSize} (rank "
                    + $"{epRank})",
                nameof(config)
            );
        }
        if (config.TopK > config.NumExperts)
        {
            throw new ArgumentException(
                $"top-k K = {config.TopK} exceeds the number of experts E = {config.NumExperts}",
                nameof(config)
            );
        }
        if (config.Capacity is not null && config.WireFormat != RowWireFormat.Native)
        {
            throw new ArgumentException(
                "capacity mode's overflow round moves rows in their own dtype, not as FP8 wire rows: set one of "
                    + $"Capacity and WireFormat (rank {epRank})",
                nameof(config)
            );
        }
        if (config.Capacity is not null && config.CollectTraffic)
        {
            throw new ArgumentException(
                "capacity mode keeps the counts on the device, and traffic collection reads them: set one of "
                    + $"Capacity and CollectTraffic (rank {epRank})",
                nameof(config)
            );
        }
        Config = config;
        EpSize = epSize;
        EpRank = epRank;
        SpSize = spSize;
        SpRank = spRank;
        Kernels = kernels ?? new HostMoeKernels(pool);
        _exchange = exchange(Kernels);
        _fp8 = Fp8RowWire.KernelsFor(config, Kernels);
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

    /// <summary>The compute backend: the kernels, and through <see cref="IMoeKernels.Device"/> where the tensors
    /// live.</summary>
    public IMoeKernels Kernels { get; }

    /// <summary>
    /// Where this dispatcher's tensors come from (the device's allocator). Its outputs (routed rows, combine output,
    /// gradients) are rented here: hand them back with <see cref="ITensorAllocator.Return"/> once used, and dispose a
    /// dispatch's result or metadata (or <see cref="Release"/> it), so steady-state calls reuse warm memory.
    /// </summary>
    public ITensorAllocator Allocator => Kernels.Device.Allocator;

    /// <summary>
    /// The traffic of the last <see cref="Dispatch"/> or <see cref="CombineWithState"/> on this dispatcher, the same
    /// on every rank of the EP group: after a dispatch its rows, bytes, count and forward waits; after the combine
    /// also the back wait. Null while <see cref="TokenDispatcherConfig.CollectTraffic"/> is off or before the first
    /// dispatch. The backward passes are not recorded.
    /// </summary>
    public TrafficReport? LastTraffic { get; private set; }

    /// <summary>
    /// Bytes this rank handed to the last dispatch's forward row exchange (codes and scales with an FP8
    /// <see cref="TokenDispatcherConfig.WireFormat"/>); 0 where no row leaves the rank (EP = 1).
    /// </summary>
    internal long LastDispatchBytesSent { get; private set; }

    /// <summary>
    /// Routes this rank's tokens to their experts.
    /// </summary>
    /// <param name="x">
    /// float32 or bfloat16 tokens (the routed rows keep this dtype): <c>[T, D]</c>, the whole sequence, in the
    /// replicated layout; <c>[T_s, D]</c>, this rank's shard, in the sharded layout.
    /// </param>
    /// <param name="topScores"><c>[T, K]</c> (or <c>[T_s, K]</c>) float32 routing scores, finite.</param>
    /// <param name="expertIds"><c>[T, K]</c> (or <c>[T_s, K]</c>) int32 or int64 expert ids in <c>[0, E)</c>.</param>
    /// <param name="totalTokens">
    /// T of the whole sequence. Needed in the sharded layout with <see cref="SpShardingPolicy.PadToMultiple"/>
    /// and SP &gt; 1 (a rank cannot tell its pad rows from its own shard alone); checked when given otherwise.
    /// </param>
    /// <exception cref="ArgumentException">Bad shapes or dtypes, an expert id outside <c>[0, E)</c> (the message names
    /// the token, slot and value), a non-finite score, or ranks of an SP group that disagree on T. Where counts are
    /// exchanged on the device, the other ranks throw too, naming the rank whose entry was invalid.</exception>
    public DispatchResult Dispatch(Tensor x, Tensor topScores, Tensor expertIds, int? totalTokens = null) =>
        DispatchWithPlacement(x, topScores, expertIds, totalTokens, null);

    /// <summary>
    /// <see cref="Dispatch"/>, with the routed rows written where
    /// <paramref name="placement"/> asks when it applies (<see cref="DispatchResult.ExpertLayout"/> says whether it
    /// did): rows stay on the rank, float32 tokens, no capacity mode and no FP8 wire.
    /// </summary>
    internal DispatchResult DispatchWithPlacement(
        Tensor x,
        Tensor topScores,
        Tensor expertIds,
        int? totalTokens,
        IRoutedRowPlacement? placement
    )
    {
        // Preprocess: check the inputs and find this rank's shard.
        ValidateShapes(x, topScores, expertIds);
        if (Config.CheckReplicatedInputs && Config.Layout == SequenceLayout.Replicated && SpSize > 1)
        {
            _exchange.CheckReplicasAgree(topScores, expertIds);
        }
        ShardClaim claim = ClaimShard(x.Rows, totalTokens);
        int inputRowOffset = Config.Layout == SequenceLayout.Replicated ? claim.Shard!.Value.Start : 0;
        int entries = DispatchSizes.Entries(claim.Rows, Config.TopK, EpRank);
        if (Config.Capacity is { } capacity)
            return DispatchWithCapacity(capacity, x, topScores, expertIds, claim, entries);
        using var scope = new TensorScope(Allocator);

        // Scan and count the entries, learn every rank's counts, plan, and lay the entries out by expert.
        DispatchPlan plan;
        PaddedGroups? expertLayout = null;
        LocalLayoutMaps local;
        double countMs;
        long countStarted;
        using (var entryScope = new TensorScope(Allocator))
        {
            var columns = new EntryColumns(
                entryScope.Rent(DType.Int32, entries),
                entryScope.Rent(DType.Float32, entries)
            );
            var shard = new ShardEntries(
                topScores,
                expertIds,
                inputRowOffset,
                claim.RealRows,
                claim.PadRows,
                Config.NumExperts
            );
            CountedEntries counted = _exchange.CountEntries(shard, columns, claim, totalTokens);
            countMs = _exchange.LastCountExchangeMilliseconds;
            countStarted = _exchange.LastCountExchangeStarted;
            if (counted.Exchanged is not { } exchanged)
                throw InvalidEntry(counted.Scan, inputRowOffset);
            var rows = new RowFormat(x.RowLength, x.DType, Kernels.Device.IsHost);
            plan = DispatchPlan.Create(
                Config,
                EpSize,
                EpRank,
                _exchange.MovesRows,
                exchanged.Shard,
                counted.Scan.Counts,
                exchanged.ReceiveCounts,
                rows
            );
            if (
                placement is not null
                && !_exchange.MovesRows
                && _fp8 is null
                && x.DType == DType.Float32
                && placement.Place(plan.TokensPerLocalExpert.AsSpan()) is { } layout
            )
            {
                // The experts' padded rows are the routed rows: the gather writes them, no layout pass follows.
                expertLayout = layout;
                plan = plan.WithExpertCapacity(layout.Capacity);
            }
            Tensor order = entryScope.Rent(DType.Int32, entries);
            Kernels.Entries.StableSortByExpert(columns.Ids, plan.ExpertCounts.AsSpan(), order);
            local = BuildLocalLayout(plan, order, columns.Scores, scope, entryScope);
        }

        ExpertMajorPermutation? permutation = plan.NeedsPermutation ? BuildPermutation(plan, scope) : null;
        var metadata = new DispatchMetadata(this, plan, x.ShapeArray(), x.DType, local, permutation)
        {
            Placement = expertLayout is null ? null : placement,
        };
        LastDispatchBytesSent = 0;
        var forward = default(ExchangeTime);
        Tensor routed;
        if (expertLayout is not null)
        {
            routed = scope.Rent(DType.BFloat16, plan.RoutedRows, x.RowLength);
            placement!.WriteTokenRows(x, inputRowOffset, TokenScatterOf(local, Config.ScoreBeforeExperts), routed);
        }
        else if (_fp8 is null && TokenRowBlocks(x, plan, local) is { } tokenRows)
        {
            // The receivers pull each row straight from its token row of x: no gather into a local layout first.
            routed = ToExpertMajor(x, tokenRows, metadata, scope, null, out forward);
        }
        else
        {
            // Gather: each token row to its K rows of the local layout (scaled here when scores multiply before
            // experts).
            Tensor gathered = scope.Rent(x.DType, plan.LocalRows, x.RowLength);
            var scatter = TokenScatterOf(local, Config.ScoreBeforeExperts);
            Kernels.Rows.ScatterTokenRows(x, inputRowOffset, scatter, gathered);
            // FP8 rounds the rows also where none moves, so the routed rows do not depend on the EP size.
            if (_fp8 is not null && !_exchange.MovesRows)
                RoundTripFp8(gathered);

            // Exchange and postprocess: the rows to the ranks that own their experts, there permuted expert-major.
            routed = _exchange.MovesRows ? ToExpertMajor(gathered, null, metadata, scope, _fp8, out forward) : gathered;
        }
        if (_exchange.MovesRows)
            LastDispatchBytesSent = _exchange.LastRowBytesSent;
        scope.Keep(routed);
        foreach (Tensor map in metadata.Tensors)
            scope.Keep(map);
        if (Config.CollectTraffic)
            metadata.Traffic = LastTraffic = DispatchTraffic(metadata, new(countStarted, countMs), forward);
        return new DispatchResult(routed, plan.TokensPerLocalExpert, metadata)
        {
            Traffic = metadata.Traffic,
            ExpertLayout = expertLayout,
        };
    }

    /// <summary>
    /// Sends the experts' outputs back and adds each token's terms in ascending expert id.
    /// </summary>
    /// <param name="routedOutput"><c>[R, D]</c> expert outputs in the dispatch's row dtype, in the layout dispatch
    /// returned.</param>
    /// <param name="metadata">The dispatch's metadata.</param>
    /// <param name="x">The dispatch's <c>x</c> (its own rows feed <paramref name="sharedExperts"/>).</param>
    /// <param name="sharedExperts">Optional shared experts, run while the exchange is in flight; they return the row
    /// dtype.</param>
    /// <returns>In the row dtype. Replicated layout: <c>[T, D]</c> with only this rank's shard filled; sharded:
    /// <c>[T_s, D]</c>.</returns>
    public Tensor Combine(
        Tensor routedOutput,
        DispatchMetadata metadata,
        Tensor x,
        SharedExpertsFunction? sharedExperts = null
    )
    {
        if (CombineReadingPeers(routedOutput, metadata, x, sharedExperts) is { } combined)
            return combined;
        CombineResult result = CombineWithState(routedOutput, metadata, x, sharedExperts);
        // No backward will read the received rows: their storage can serve the next call.
        result.State.Dispose();
        return result.Output;
    }

    /// <summary><see cref="Combine"/>, also returning what <see cref="CombineBackward"/> needs.</summary>
    public CombineResult CombineWithState(
        Tensor routedOutput,
        DispatchMetadata metadata,
        Tensor x,
        SharedExpertsFunction? sharedExperts = null
    )
    {
        CheckMetadata(metadata);
        CheckRows(routedOutput, nameof(routedOutput), metadata);
        CheckSameShape(x, nameof(x), metadata.InputShape, metadata.RowType);
        DispatchPlan plan = metadata.Plan;
        using var scope = new TensorScope(Allocator);

        // Exchange: the expert outputs back to the ranks their tokens came from, while the shared experts run.
        Tensor localRows = routedOutput;
        Tensor? shared;
        using (var inFlight = new TensorScope(Allocator))
        {
            CollectiveRequest pending = CollectiveRequest.Completed;
            double backMs = 0;
            long backStarted = 0;
            Tensor? send = null;
            if (_exchange.MovesRows)
            {
                localRows = scope.Rent(metadata.RowType, plan.LocalRows, metadata.Dim);
                backStarted = Config.CollectTraffic ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
                pending = SendRowsBack(routedOutput, metadata, inFlight, localRows, overlap: true, out send);
                if (Config.CollectTraffic)
                    backMs = TrafficCollection.MillisecondsSince(backStarted);
            }
            try
            {
                shared = sharedExperts is null ? null : RunSharedExperts(sharedExperts, x, metadata);
            }
            catch
            {
                // Let the exchange finish so peers are not left waiting on this rank's buffers.
                try
                {
                    pending.Wait();
                }
                catch (CollectiveException)
                {
                    if (_exchange.MovesRows)
                        scope.Keep(localRows);
                }
                throw;
            }
            if (_exchange.MovesRows)
            {
                // The shared experts' time is not waiting: only the start and the wait are counted.
                long waited = Config.CollectTraffic ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
                Receive(scope, localRows, pending.Wait);
                if (metadata.Capacity?.Overflow is { } overflow)
                    ExchangeOverflow(send!, overflow.SlotRows, overflow.ReceiveRows, localRows, overflow.SendRows);
                if (Config.CollectTraffic)
                    backMs += TrafficCollection.MillisecondsSince(waited);
            }
            if (Config.CollectTraffic && metadata.Traffic is { } dispatched)
            {
                metadata.Traffic = LastTraffic = CombineTraffic(dispatched, new(backStarted, backMs));
            }
        }

        // Postprocess: each token's terms added in ascending expert id, into the row only that token owns.
        Tensor output = NewOutput(metadata, scope);
        Kernels.Rows.GatherReduce(
            new TokenGather(
                localRows,
                metadata.Local.TokenPositions,
                Config.ScoreBeforeExperts ? null : metadata.Local.RowScore,
                shared
            ),
            output,
            plan.InputRowOffset
        );
        bool received = !ReferenceEquals(localRows, routedOutput);
        if (received)
            scope.Keep(localRows);
        return new CombineResult(scope.Keep(output), new CombineState(metadata, localRows, ownsRows: received));
    }

    /// <summary>
    /// <see cref="Combine"/> in one pass where the ranks are in-process threads on host rows: each token's terms are
    /// read straight from the expert-major rows of the ranks that computed them (no exchange into a local copy first)
    /// and added in the same order, so the same bits. Null where that does not apply; no backward state is kept (the
    /// received rows it would hold are never made).
    /// </summary>
    private Tensor? CombineReadingPeers(
        Tensor routedOutput,
        DispatchMetadata metadata,
        Tensor x,
        SharedExpertsFunction? sharedExperts
    )
    {
        if (
            !_exchange.MovesRows
            || Kernels is not HostMoeKernels
            || routedOutput is null
            || PlacedExchange(routedOutput) is not { } placed
        )
        {
            return null;
        }
        CheckMetadata(metadata);
        CheckRows(routedOutput, nameof(routedOutput), metadata);
        CheckSameShape(x, nameof(x), metadata.InputShape, metadata.RowType);
        DispatchPlan plan = metadata.Plan;
        using var scope = new TensorScope(Allocator);
        Tensor? shared = sharedExperts is null ? null : RunSharedExperts(sharedExperts, x, metadata);
        Tensor output = NewOutput(metadata, scope);
        ChunkBlocks? blocks = metadata.Permutation is null ? null : ExpertMajorBlocks.Of(plan, metadata.Dim);
        HostRowKernels rows = HostRowKernels.For(metadata.RowType);
        Tensor? scale = Config.ScoreBeforeExperts ? null : metadata.Local.RowScore;
        long started = Config.CollectTraffic ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        placed.ReadPeerRows(
            routedOutput,
            plan.OutputSplits,
            blocks,
            plan.InputSplits,
            addresses =>
                rows.GatherReduceAt(
                    addresses,
                    metadata.Local.TokenPositions,
                    scale,
                    shared,
                    output,
                    plan.InputRowOffset
                )
        );
        if (Config.CollectTraffic && metadata.Traffic is { } dispatched)
        {
            // The reduce is the exchange here: its time is the back wait.
            var back = new ExchangeTime(started, TrafficCollection.MillisecondsSince(started));
            metadata.Traffic = LastTraffic = CombineTraffic(dispatched, back);
        }
        return scope.Keep(output);
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
        using var scope = new TensorScope(Allocator);

        // Gather: each token's gradient to its K rows (scaled here when scores multiplied at combine).
        bool scoreAfter = !Config.ScoreBeforeExperts;
        TokenScatter scatter = TokenScatterOf(metadata.Local, scoreAfter);
        Tensor gathered;
        if (metadata.Placement is { } placement)
        {
            // Straight into the experts' padded bfloat16 rows, where the forward's routed rows were placed.
            gathered = scope.Rent(DType.BFloat16, metadata.Plan.LocalRows, metadata.Dim);
            placement.WriteTokenRows(gradOutput, metadata.Plan.InputRowOffset, scatter, gathered);
        }
        else
        {
            gathered = scope.Rent(metadata.RowType, metadata.Plan.LocalRows, metadata.Dim);
            Kernels.Rows.ScatterTokenRows(gradOutput, metadata.Plan.InputRowOffset, scatter, gathered);
        }
        Tensor? gradScores = scoreAfter ? ScoreGradients(state.CombinedRows, gradOutput, metadata, scope) : null;

        // Exchange and permute, as dispatch.
        Tensor gradRouted = _exchange.MovesRows
            ? ToExpertMajor(gathered, null, metadata, scope, null, out _)
            : gathered;
        return new CombineBackwardResult(scope.Keep(gradRouted), gradScores is null ? null : scope.Keep(gradScores));
    }

    /// <summary>
    /// Backward of <see cref="Dispatch"/>: sends the gradient of the routed rows back to their tokens
    /// (combine's exchange) and sums each token's terms in ascending expert id.
    /// </summary>
    /// <param name="gradRoutedTokens"><c>[R, D]</c>: gradient of the routed rows, expert-major.</param>
    /// <param name="metadata">The dispatch's metadata.</param>
    /// <param name="x">The dispatch's <c>x</c> (for the score gradient when scores multiply before the
    /// experts).</param>
    public DispatchBackwardResult DispatchBackward(Tensor gradRoutedTokens, DispatchMetadata metadata, Tensor x)
    {
        CheckMetadata(metadata);
        CheckRows(gradRoutedTokens, nameof(gradRoutedTokens), metadata);
        CheckSameShape(x, nameof(x), metadata.InputShape, metadata.RowType);
        DispatchPlan plan = metadata.Plan;
        using var scope = new TensorScope(Allocator);

        // Exchange: the gradients back to the ranks their tokens came from, as combine.
        Tensor localRows = gradRoutedTokens;
        if (_exchange.MovesRows)
        {
            using var inFlight = new TensorScope(Allocator);
            localRows = scope.Rent(metadata.RowType, plan.LocalRows, metadata.Dim);
            Tensor receive = localRows;
            Tensor? send = null;
            Receive(
                scope,
                receive,
                () => SendRowsBack(gradRoutedTokens, metadata, inFlight, receive, overlap: false, out send)
            );
            if (metadata.Capacity?.Overflow is { } overflow)
                ExchangeOverflow(send!, overflow.SlotRows, overflow.ReceiveRows, receive, overflow.SendRows);
        }

        // Postprocess: each token's terms summed in ascending expert id.
        Tensor gradX = NewOutput(metadata, scope);
        Kernels.Rows.GatherReduce(
            new TokenGather(
                localRows,
                metadata.Local.TokenPositions,
                Config.ScoreBeforeExperts ? metadata.Local.RowScore : null,
                null
            ),
            gradX,
            plan.InputRowOffset
        );
        Tensor? gradScores = Config.ScoreBeforeExperts ? ScoreGradients(localRows, x, metadata, scope) : null;
        return new DispatchBackwardResult(scope.Keep(gradX), gradScores is null ? null : scope.Keep(gradScores));
    }

    /// <summary>
    /// Hands a dispatch's metadata tensors back to <see cref="Allocator"/> once its combine and backward are done (the
    /// same as disposing it); the metadata cannot be used afterwards. Optional: unreleased metadata is collected by the
    /// GC.
    /// </summary>
    /// <exception cref="ArgumentException">The metadata is another dispatcher's, or was already released.</exception>
    public void Release(DispatchMetadata metadata)
    {
        CheckMetadata(metadata);
        metadata.Dispose();
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
        if (Config.Layout == SequenceLayout.Sharded || SpSize == 1)
            return partial;
        using var scope = new TensorScope(Allocator);
        Tensor sum = scope.Rent(partial.DType, partial.ShapeArray());
        Kernels.Rows.CopyRows(partial, 0, sum, 0, partial.Rows);
        _exchange.SumOverSequenceParallel(sum);
        return scope.Keep(sum);
    }

    /// <summary>
    /// What this rank knows of its shard before the count exchange, from its input and the declared T; the errors for
    /// inputs that contradict the layout or each other.
    /// </summary>
    private ShardClaim ClaimShard(int inputRows, int? totalTokens)
    {
        if (totalTokens is < 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(totalTokens),
                totalTokens,
                "the total token count T must not be negative"
            );
        }
        if (Config.Layout == SequenceLayout.Replicated)
        {
            if (totalTokens is int t && t != inputRows)
            {
                throw new ArgumentException(
                    $"totalTokens = {t} but x has {inputRows} rows, and in the replicated layout x holds every "
                        + $"token (rank {EpRank})",
                    nameof(totalTokens)
                );
            }
            return ShardClaim.Known(SequenceShard.For(Config.Sharding, inputRows, SpSize, SpRank));
        }
        if (SpSize == 1)
        {
            if (totalTokens is int t && t != inputRows)
            {
                throw new ArgumentException(
                    $"totalTokens = {t} but x has {inputRows} rows and the SP size is 1 (rank {EpRank})",
                    nameof(totalTokens)
                );
            }
            return ShardClaim.Known(new SequenceShard(inputRows, 0, inputRows, 0));
        }
        if (totalTokens is int total)
        {
            SequenceShard expected = SequenceShard.For(Config.Sharding, total, SpSize, SpRank);
            if (expected.RealRows != inputRows)
            {
                throw new ArgumentException(
                    $"x has {inputRows} rows but SP rank {SpRank} of {SpSize} holds {expected.RealRows} of T = "
                        + $"{total} tokens under {Config.Sharding} sharding (rank {EpRank})",
                    "x"
                );
            }
            return ShardClaim.Known(expected);
        }
        if (Config.Sharding == SpShardingPolicy.PadToMultiple)
        {
            throw new ArgumentException(
                $"the sharded layout with PadToMultiple sharding and SP = {SpSize} needs totalTokens: a rank "
                    + $"cannot tell "
                    + $"its pad rows from its shard alone (rank {EpRank})",
                nameof(totalTokens)
            );
        }
        // Balanced sharding without T: the count exchange learns T and the shard's start.
        return ShardClaim.StartUnknown(inputRows);
    }

    private void ValidateShapes(Tensor x, Tensor topScores, Tensor expertIds)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(topScores);
        ArgumentNullException.ThrowIfNull(expertIds);
        if ((x.DType != DType.Float32 && x.DType != DType.BFloat16) || x.Rank != 2)
        {
            throw new ArgumentException(
                $"x must be a float32 or bfloat16 [T, D] tensor; got {x.DType} {x.ShapeString} (rank {EpRank})",
                nameof(x)
            );
        }
        int t = x.Dim(0),
            k = Config.TopK;
        if (topScores.DType != DType.Float32 || topScores.Rank != 2 || topScores.Dim(0) != t || topScores.Dim(1) != k)
        {
            throw new ArgumentException(
                $"topScores must be float32 [{t}, {k}] (T from x, K from the config); got "
                    + $"{topScores.DType} {topScores.ShapeString} (rank {EpRank})",
                nameof(topScores)
            );
        }
        bool idType = expertIds.DType == DType.Int32 || expertIds.DType == DType.Int64;
        if (!idType || expertIds.Rank != 2 || expertIds.Dim(0) != t || expertIds.Dim(1) != k)
        {
            throw new ArgumentException(
                $"expertIds must be int32 or int64 [{t}, {k}]; got {expertIds.DType} "
                    + $"{expertIds.ShapeString} (rank {EpRank})",
                nameof(expertIds)
            );
        }
    }

    /// <summary>The error for the first invalid entry the scan found: the token, slot and value.</summary>
    private ArgumentException InvalidEntry(EntryScan scan, int rowOffset)
    {
        int k = Config.TopK;
        int token = rowOffset + scan.FirstInvalidEntry / k,
            slot = scan.FirstInvalidEntry % k;
        if ((ulong)scan.InvalidId >= (ulong)Config.NumExperts)
        {
            return new ArgumentOutOfRangeException(
                "expertIds",
                scan.InvalidId,
                $"expertIds[token {token}, slot {slot}] = {scan.InvalidId} is outside [0, {Config.NumExperts}) "
                    + $"(rank {EpRank})"
            );
        }
        return new ArgumentException(
            $"topScores[token {token}, slot {slot}] = {scan.InvalidScore} is not finite (rank {EpRank})",
            "topScores"
        );
    }

    /// <summary>
    /// The four row maps of the local layout (rented in <paramref name="scope"/>, the metadata's): sorted position i
    /// holds entry <c>order[i]</c> and lands in the plan's row for it. The uploaded row map is
    /// <paramref name="scratch"/>'s.
    /// </summary>
    private LocalLayoutMaps BuildLocalLayout(
        DispatchPlan plan,
        Tensor order,
        Tensor entryScores,
        TensorScope scope,
        TensorScope scratch
    )
    {
        int realTokens = plan.Shard.RealRows,
            k = Config.TopK;
        Tensor? rowOfSorted = null;
        if (!plan.RowOfSorted.IsDefault)
        {
            // The map follows from the counts alone, which the host has: built there, copied to the device.
            // The plan's array is only read, so the host tensor wraps it without a copy.
            Tensor host = Tensor.FromArray(ImmutableCollectionsMarshal.AsArray(plan.RowOfSorted)!, plan.SentRows);
            rowOfSorted = Kernels.Device.ToDevice(host);
            // On the host the "copy" is the array itself, which no allocator lent.
            if (!ReferenceEquals(rowOfSorted, host))
                scratch.Adopt(rowOfSorted);
        }
        var maps = new LocalLayoutMaps(
            RowToken: scope.Rent(DType.Int32, plan.LocalRows),
            RowScore: scope.Rent(DType.Float32, plan.LocalRows),
            EntryRow: scope.Rent(DType.Int32, realTokens * k),
            TokenPositions: scope.Rent(DType.Int32, realTokens, k)
        );
        Kernels.Entries.BuildLocalLayout(new SortedEntries(order, entryScores, realTokens, k, rowOfSorted), maps);
        return maps;
    }

    /// <summary>The dispatch gather's map: every row of the local layout from its token, scaled when asked.</summary>
    private TokenScatter TokenScatterOf(LocalLayoutMaps local, bool scale) =>
        new(local.RowToken, local.EntryRow, Config.TopK, scale ? local.RowScore : null);

    /// <summary>The maps between the received rank-major rows and the expert-major routed rows, from the plan's
    /// blocks.</summary>
    private ExpertMajorPermutation BuildPermutation(DispatchPlan plan, TensorScope scope)
    {
        Tensor expertMajor = scope.Rent(DType.Int32, plan.RoutedRows);
        Tensor rankMajor = scope.Rent(DType.Int32, plan.RowsReceived);
        Kernels.Entries.BuildPermutation(
            plan.BlockStart.AsSpan(),
            plan.BlockDestination.AsSpan(),
            expertMajor,
            rankMajor
        );
        return new ExpertMajorPermutation(expertMajor, rankMajor);
    }

    /// <summary>
    /// The traffic of a dispatch: this rank's row from the plan and its waits, gathered over the EP group.
    /// </summary>
    private TrafficReport DispatchTraffic(DispatchMetadata metadata, ExchangeTime counts, ExchangeTime forward)
    {
        TrafficReport partial = TrafficCollection.Partial(
            metadata.Plan,
            EpSize,
            EpRank,
            Config.NumExperts,
            _fp8 is null
                ? (long)metadata.Dim * metadata.RowType.SizeOf()
                : Quantization.Fp8WireRows.BytesPerRow(metadata.Dim)
        );
        partial.AddExchangeWait(EpRank, TrafficExchange.Counts, counts.Milliseconds);
        partial.AddExchangeWait(EpRank, TrafficExchange.RowsForward, forward.Milliseconds);
        return _exchange.GatherTraffic(partial, [counts.Started, forward.Started, 0]);
    }

    /// <summary>
    /// The dispatch's report with every rank's back-exchange wait added (gathered over the EP group). The matrix stays
    /// the dispatch's: combine sends the same rows back, its transpose.
    /// </summary>
    private TrafficReport CombineTraffic(TrafficReport dispatched, ExchangeTime back)
    {
        var partial = new TrafficReport(EpSize, Config.NumExperts);
        partial.AddExchangeWait(EpRank, TrafficExchange.RowsBack, back.Milliseconds);
        // Each exchange wait has one non-zero contributor, so that sum is exact; the per-peer waits add the back
        // exchange's to the dispatch's in the same order on every rank, so every rank gets the same bits.
        return TrafficReport.Reduce([dispatched, _exchange.GatherTraffic(partial, [0, 0, back.Started])]);
    }

    /// <summary>
    /// Forward exchange: local-layout rows to this rank's experts, expert-major; <paramref name="exchange"/> is when
    /// the row exchange started and its time when traffic is collected (zeros otherwise). With <paramref name="fp8"/>
    /// the rows travel as FP8 wire rows (dispatch only: combine's backward sends gradients in their dtype).
    /// </summary>
    /// <param name="localRows">The local layout's rows, or the token rows <paramref name="sendBlocks"/> name.</param>
    /// <param name="sendBlocks">Where each local-layout row lies in <paramref name="localRows"/> when it is not the
    /// local layout itself (<see cref="TokenRowBlocks"/>); only with an exchange that places rows.</param>
    /// <param name="metadata">The dispatch's metadata.</param>
    /// <param name="scope">Where the routed rows are rented.</param>
    /// <param name="fp8">The FP8 row kernels when rows travel as FP8 wire rows, else null.</param>
    /// <param name="exchange">When the exchange started and its time, when traffic is collected; else zeros.</param>
    private Tensor ToExpertMajor(
        Tensor localRows,
        ChunkBlocks? sendBlocks,
        DispatchMetadata metadata,
        TensorScope scope,
        IFp8RowKernels? fp8,
        out ExchangeTime exchange
    )
    {
        DispatchPlan plan = metadata.Plan;
        if (fp8 is null && PlacedExchange(localRows) is { } placed)
        {
            // Each row goes straight to its expert-major row: no permuting copy after the exchange.
            Tensor placedRows = scope.Rent(metadata.RowType, plan.RoutedRows, metadata.Dim);
            ExpertMajorBlocks.ClearPadRows(plan, placedRows);
            long begun = Config.CollectTraffic ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            ChunkBlocks? blocks = plan.NeedsPermutation ? ExpertMajorBlocks.Of(plan, metadata.Dim) : null;
            Receive(
                scope,
                placedRows,
                () =>
                    placed.ExchangePlacedRows(
                        localRows,
                        plan.InputSplits,
                        sendBlocks,
                        placedRows,
                        plan.OutputSplits,
                        blocks,
                        overlap: false
                    )
            );
            exchange = new(begun, Config.CollectTraffic ? TrafficCollection.MillisecondsSince(begun) : 0);
            return placedRows;
        }
        Tensor received = scope.Rent(metadata.RowType, plan.RowsReceived, metadata.Dim);
        long started = Config.CollectTraffic ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        if (fp8 is null)
        {
            Receive(
                scope,
                received,
                () => _exchange.ExchangeRows(localRows, plan.InputSplits, received, plan.OutputSplits)
            );
        }
        else
            ExchangeFp8(localRows, received, plan, scope, fp8);
        if (metadata.Capacity?.Overflow is { } overflow)
            ExchangeOverflow(localRows, overflow.SlotRows, overflow.SendRows, received, overflow.ReceiveRows);
        exchange = new(started, Config.CollectTraffic ? TrafficCollection.MillisecondsSince(started) : 0);
        if (metadata.Permutation is null)
            return received;
        Tensor routed = scope.Rent(metadata.RowType, plan.RoutedRows, metadata.Dim);
        Kernels.Rows.GatherRows(received, 0, metadata.Permutation.ExpertMajorRowOf, null, routed);
        return routed;
    }

    /// <summary>
    /// The forward exchange in FP8: the local rows quantised on this rank, codes and scales moved in one all-to-all-v
    /// of int32 wire rows, dequantised here into <paramref name="received"/> (the row dtype).
    /// </summary>
    private void ExchangeFp8(
        Tensor localRows,
        Tensor received,
        DispatchPlan plan,
        TensorScope scope,
        IFp8RowKernels fp8
    )
    {
        int words = Quantization.Fp8WireRows.WordsPerRow(localRows.RowLength);
        Tensor send = scope.Rent(DType.Int32, localRows.Rows, words);
        fp8.QuantizeRows(localRows, send);
        Tensor receive = scope.Rent(DType.Int32, received.Rows, words);
        Receive(scope, receive, () => _exchange.ExchangeRows(send, plan.InputSplits, receive, plan.OutputSplits));
        fp8.DequantizeRows(receive, received);
    }

    /// <summary>FP8 where no row moves (EP = 1): the rows quantised and dequantised in place.</summary>
    private void RoundTripFp8(Tensor rows)
    {
        using var scratch = new TensorScope(Allocator);
        Tensor wire = scratch.Rent(DType.Int32, rows.Rows, Quantization.Fp8WireRows.WordsPerRow(rows.RowLength));
        _fp8!.QuantizeRows(rows, wire);
        _fp8.DequantizeRows(wire, rows);
    }

    /// <summary>
    /// Runs <paramref name="exchange"/>, which writes <paramref name="receive"/>. When it fails the buffer leaves
    /// <paramref name="scope"/> unreturned, for the GC: a peer or the device may still be writing it, so it must not
    /// serve another call.
    /// </summary>
    private static void Receive(TensorScope scope, Tensor receive, Action exchange)
    {
        try
        {
            exchange();
        }
        catch
        {
            scope.Keep(receive);
            throw;
        }
    }

    /// <summary>
    /// The exchange when <paramref name="rows"/> can move straight between the ranks' buffers (in-process ranks, host
    /// rows); null otherwise and in capacity mode, whose slots and overflow round go through the plain exchange.
    /// </summary>
    private IPlacedRowExchange? PlacedExchange(Tensor rows) =>
        Config.Capacity is null && _exchange is IPlacedRowExchange placed && placed.PlacesRows(rows) ? placed : null;

    /// <summary>
    /// Where each row of the local layout lies in <paramref name="x"/> (one block of D elements per row, peer by peer),
    /// when the rows can leave straight from it: an exchange that places rows, rows that are plain copies of token rows
    /// (scores multiply after the experts) and no SP pad entries (whose rows are zeros, not token rows). Else null.
    /// </summary>
    private ChunkBlocks? TokenRowBlocks(Tensor x, DispatchPlan plan, LocalLayoutMaps local)
    {
        if (
            !_exchange.MovesRows
            || PlacedExchange(x) is null
            || Config.ScoreBeforeExperts
            || plan.SentRows != plan.Shard.RealRows * Config.TopK
            || plan.LocalRows != plan.SentRows
        )
        {
            return null;
        }
        ReadOnlySpan<int> rowToken = local.RowToken.AsSpan<int>();
        int rows = plan.SentRows,
            d = x.RowLength;
        var peerStart = new int[plan.InputSplits.Length + 1];
        for (int q = 0; q < plan.InputSplits.Length; q++)
            peerStart[q + 1] = peerStart[q] + plan.InputSplits[q];
        var offset = new long[rows];
        var length = new long[rows];
        for (int r = 0; r < rows; r++)
        {
            offset[r] = (long)(plan.InputRowOffset + rowToken[r]) * d;
            length[r] = d;
        }
        return new ChunkBlocks(peerStart, offset, length);
    }

    /// <summary>
    /// The backward exchange (combine, dispatch's backward): expert-major rows back to the ranks they came from, into
    /// <paramref name="receive"/> in the local layout. Where the exchange places rows, each row leaves straight from
    /// its expert-major block; otherwise the rows are first permuted back to rank-major, into
    /// <paramref name="rankMajor"/> (null where rows were placed), which capacity mode's overflow round sends again.
    /// With <paramref name="overlap"/> it returns once the exchange is started.
    /// </summary>
    private CollectiveRequest SendRowsBack(
        Tensor routedRows,
        DispatchMetadata metadata,
        TensorScope scope,
        Tensor receive,
        bool overlap,
        out Tensor? rankMajor
    )
    {
        rankMajor = null;
        DispatchPlan plan = metadata.Plan;
        if (metadata.Permutation is not null && PlacedExchange(routedRows) is { } placed)
        {
            ChunkBlocks blocks = ExpertMajorBlocks.Of(plan, metadata.Dim);
            return placed.ExchangePlacedRows(
                routedRows,
                plan.OutputSplits,
                blocks,
                receive,
                plan.InputSplits,
                null,
                overlap
            );
        }
        Tensor send = rankMajor = ToRankMajor(routedRows, metadata, scope);
        if (overlap)
            return _exchange.StartExchangeRows(send, plan.OutputSplits, receive, plan.InputSplits);
        _exchange.ExchangeRows(send, plan.OutputSplits, receive, plan.InputSplits);
        return CollectiveRequest.Completed;
    }

    /// <summary>Inverse permute: expert-major rows back to the rank-major order they arrived in (pads
    /// dropped).</summary>
    private Tensor ToRankMajor(Tensor routedRows, DispatchMetadata metadata, TensorScope scope)
    {
        if (metadata.Permutation is null)
            return routedRows;
        Tensor send = scope.Rent(metadata.RowType, metadata.Plan.RowsReceived, metadata.Dim);
        Kernels.Rows.GatherRows(routedRows, 0, metadata.Permutation.RankMajorRowOf, null, send);
        return send;
    }

    private Tensor? RunSharedExperts(SharedExpertsFunction sharedExperts, Tensor x, DispatchMetadata metadata)
    {
        int n = metadata.Shard.RealRows,
            d = metadata.Dim;
        Tensor own = x;
        if (x.Rows != n)
        {
            // The shared experts may keep their input (for their backward): it is theirs, not this call's.
            own = Allocator.Rent(metadata.RowType, n, d);
            Kernels.Rows.CopyRows(x, metadata.Plan.InputRowOffset, own, 0, n);
        }
        Tensor result = sharedExperts(own) ?? throw new InvalidOperationException("the shared experts returned null");
        if (result.DType != metadata.RowType || result.Rank != 2 || result.Dim(0) != n || result.Dim(1) != d)
        {
            throw new InvalidOperationException(
                $"the shared experts must return {metadata.RowType} [{n}, {d}] for this rank's {n} tokens; got "
                    + $"{result.DType} {result.ShapeString} (rank {EpRank})"
            );
        }
        return result;
    }

    /// <summary>
    /// Gradient of each (token, slot) score: the dot of the entry's row with the token's row of
    /// <paramref name="tokenRows"/>.
    /// </summary>
    private Tensor ScoreGradients(Tensor localRows, Tensor tokenRows, DispatchMetadata metadata, TensorScope scope)
    {
        int k = Config.TopK,
            offset = metadata.Plan.InputRowOffset;
        Tensor grad = scope.Rent(DType.Float32, metadata.InputShape[0], k);
        // Only rows outside this shard need zeros: the dots write every entry of the shard's rows.
        if (metadata.Local.EntryRow.ElementCount != grad.ElementCount)
            Kernels.Rows.Clear(grad);
        Kernels.Rows.RowDots(new RowPairs(localRows, metadata.Local.EntryRow, tokenRows, offset, k), grad, offset * k);
        return grad;
    }

    private Tensor NewOutput(DispatchMetadata metadata, TensorScope scope)
    {
        int[] shape = OutputShape(metadata);
        Tensor output = scope.Rent(metadata.RowType, shape);
        // The replicated output has rows outside this shard, which stay zero.
        if (shape[0] != metadata.Shard.RealRows)
            Kernels.Rows.Clear(output);
        return output;
    }

    private static int[] OutputShape(DispatchMetadata metadata) => [metadata.InputShape[0], metadata.Dim];

    private void CheckMetadata(DispatchMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (!ReferenceEquals(metadata.Owner, this))
        {
            throw new ArgumentException(
                $"the metadata comes from another dispatcher (rank {EpRank})",
                nameof(metadata)
            );
        }
        if (metadata.IsReleased)
        {
            throw new ArgumentException($"the metadata was released (rank {EpRank})", nameof(metadata));
        }
    }

    private void CheckRows(Tensor rows, string name, DispatchMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(rows, name);
        int expectedRows = metadata.RoutedRows,
            dim = metadata.Dim;
        if (rows.DType != metadata.RowType || rows.Rank != 2 || rows.Dim(0) != expectedRows || rows.Dim(1) != dim)
        {
            throw new ArgumentException(
                $"{name} must be {metadata.RowType} [{expectedRows}, {dim}] as dispatched; got {rows.DType} "
                    + $"{rows.ShapeString} (rank {EpRank})",
                name
            );
        }
    }

    private void CheckSameShape(Tensor tensor, string name, int[] shape, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        if (tensor.DType != dtype || !tensor.Shape.SequenceEqual(shape))
        {
            throw new ArgumentException(
                $"{name} must be {dtype} [{string.Join(", ", shape)}] as at dispatch; got {tensor.DType} "
                    + $"{tensor.ShapeString} (rank {EpRank})",
                name
            );
        }
    }
}
