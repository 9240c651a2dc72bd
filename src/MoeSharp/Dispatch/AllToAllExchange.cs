using System.Collections.Immutable;
using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Telemetry;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// The expert-parallel exchange (EP &gt; 1, torchtitan's): counts with an all-to-all, rows with an all-to-all-v to the
/// ranks that own their experts and back, and the SP group's sum of the replicated layout's outputs.
/// </summary>
/// <remarks>
/// The count messages (<see cref="CountMessages"/>) carry, after each rank's counts, its view of the sequence (declared
/// T, real rows, pad rows) and whether its entries were valid. Every rank checks every SP group's agreement on T from
/// the same data, so all ranks throw the same error instead of some hanging. Where the tensors and the group live on a
/// device, the scan, the messages and their exchange stay there, and one copy brings this rank's scan and every
/// rank's counts to the host together.
/// </remarks>
internal sealed class AllToAllExchange : ITokenExchange, IPlacedRowExchange
{
    private readonly ParallelGroups _groups;
    private readonly IMoeKernels _kernels;
    private readonly TokenDispatcherConfig _config;

    /// <summary>Creates the exchange of one rank.</summary>
    /// <param name="groups">EP and SP groups.</param>
    /// <param name="kernels">Where the rank's tensors live.</param>
    /// <param name="config">What is routed.</param>
    public AllToAllExchange(ParallelGroups groups, IMoeKernels kernels, TokenDispatcherConfig config)
    {
        _groups = groups;
        _kernels = kernels;
        _config = config;
    }

    private int EpSize => _groups.EpSize;

    private int EpRank => _groups.World.Rank;

    private int LocalExperts => _config.NumExperts / EpSize;

    /// <inheritdoc />
    /// <remarks>Rows stay put on a world of one rank, which exchanges only counts.</remarks>
    public bool MovesRows => EpSize > 1;

    /// <inheritdoc />
    public void CheckReplicasAgree(Tensor topScores, Tensor expertIds) =>
        ReplicaHash.CheckAgreement(_groups.World, _groups.SpSize, ReplicaHash.Of(topScores, expertIds));

    /// <inheritdoc />
    public CountedEntries CountEntries(
        ShardEntries shard,
        EntryColumns entries,
        ShardClaim claim,
        int? declaredTotalTokens
    )
    {
        var messages = new CountMessages(
            EpSize,
            LocalExperts,
            claim.PadRows * _config.TopK,
            MessageHeader(claim, declaredTotalTokens)
        );
        // Device kernels keep the scan on the device: the messages go out without a copy to the host first.
        if (!_kernels.Device.IsHost)
            return CountOnDevice(shard, entries, claim, messages);
        EntryScan scan = _kernels.Entries.PrepareEntries(shard, entries);
        if (scan.FirstInvalidEntry >= 0)
            return new CountedEntries(scan, null);
        return new CountedEntries(scan, ExchangeCountsOnHost(scan.Counts, claim, messages));
    }

    /// <summary>
    /// The scan, the count messages and their exchange on the device (<see cref="IEntryKernels.ScanEntries"/>,
    /// <see cref="IEntryKernels.PackCountMessages"/>, a device all-to-all), then one device-to-host copy for this
    /// rank's scan and every rank's messages together. Every rank learns whether any rank's entries were invalid.
    /// </summary>
    private CountedEntries CountOnDevice(
        ShardEntries shard,
        EntryColumns entries,
        ShardClaim claim,
        CountMessages messages
    )
    {
        int experts = _config.NumExperts,
            total = messages.TotalLength;
        int[] words;
        // One int32 block: the received messages first, this rank's scan after them, so one copy brings both.
        using (var scope = new TensorScope(_kernels.Device.Allocator))
        {
            Tensor block = scope.Rent(DType.Int32, total + EntryScanWords.Length(experts));
            Tensor send = scope.Rent(DType.Int32, total);
            _kernels.Entries.ScanEntries(shard, entries, block, total);
            _kernels.Entries.PackCountMessages(block, total, messages, send);
            int[] sizes = Enumerable.Repeat(messages.Length, EpSize).ToArray();
            long started = _config.CollectTraffic ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            _groups.World.AllToAllV(send, sizes, block, sizes);
            if (_config.CollectTraffic)
            {
                LastCountExchangeStarted = started;
                LastCountExchangeMilliseconds = TrafficCollection.MillisecondsSince(started);
            }
            words = _kernels.Device.ToHost(block).AsSpan<int>().ToArray();
        }

        EntryScan scan = EntryScanWords.Decode(words.AsSpan(total), experts, messages.PadEntries);
        if (scan.FirstInvalidEntry >= 0)
            return new CountedEntries(scan, null);
        for (int p = 0; p < EpSize; p++)
        {
            if (words[p * messages.Length + messages.FlagOffset] == 0)
                continue;
            throw new PeerRankException(
                $"rank {p} passed an invalid routing entry (an expert id outside [0, {experts}) or a non-finite "
                    + $"score; "
                    + $"its own error names it), so no rank dispatches (rank {EpRank})",
                _groups.World.WorldRanks[p],
                "expertIds"
            );
        }
        return new CountedEntries(scan, ReadCountMessages(words, messages, claim));
    }

    /// <summary>The count exchange on the host: this rank's counts viewed <c>[S, e]</c>, message q to rank q.</summary>
    private ExchangedCounts ExchangeCountsOnHost(int[] counts, ShardClaim claim, CountMessages messages)
    {
        int e = LocalExperts,
            length = messages.Length;
        var send = new int[messages.TotalLength];
        var receive = new int[messages.TotalLength];
        for (int q = 0; q < EpSize; q++)
        {
            Span<int> message = send.AsSpan(q * length, length);
            counts.AsSpan(q * e, e).CopyTo(message);
            messages.Header.AsSpan().CopyTo(message.Slice(messages.HeaderOffset));
            // The flag stays 0: a rank with an invalid entry throws before the host exchange.
        }
        long started = _config.CollectTraffic ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        _groups.World.AllToAll<int>(send, receive);
        if (_config.CollectTraffic)
        {
            LastCountExchangeStarted = started;
            LastCountExchangeMilliseconds = TrafficCollection.MillisecondsSince(started);
        }
        return ReadCountMessages(receive, messages, claim);
    }

    /// <summary>What every count message carries after its counts: declared T (-1 when unknown), real rows, pad
    /// rows.</summary>
    private ImmutableArray<int> MessageHeader(ShardClaim claim, int? declaredTotalTokens)
    {
        int declared =
            _config.Layout == SequenceLayout.Replicated ? claim.Shard!.Value.TotalTokens : declaredTotalTokens ?? -1;
        return [declared, claim.RealRows, claim.PadRows];
    }

    /// <summary>The counts of the received messages (from rank 0 on), after the sequence checks.</summary>
    private ExchangedCounts ReadCountMessages(int[] words, CountMessages messages, ShardClaim claim)
    {
        int e = LocalExperts;
        var receiveCounts = new int[EpSize * e];
        for (int p = 0; p < EpSize; p++)
            words.AsSpan(p * messages.Length, e).CopyTo(receiveCounts.AsSpan(p * e, e));
        return new ExchangedCounts(receiveCounts, CheckSequenceAgreement(words, messages, claim));
    }

    /// <summary>
    /// Checks, from every rank's header, that each SP group agrees on T and that each rank's shard is the one the
    /// policy gives it; every rank runs the same check on the same data. Returns this rank's shard, its start resolved.
    /// </summary>
    private SequenceShard CheckSequenceAgreement(int[] words, CountMessages messages, ShardClaim claim)
    {
        int sp = _groups.SpSize,
            length = messages.Length,
            header = messages.HeaderOffset;
        SequenceShard? mine = claim.Shard;
        int Declared(int rank) => words[rank * length + header];
        int Real(int rank) => words[rank * length + header + 1];
        for (int group = 0; group < EpSize / sp; group++)
        {
            int first = group * sp;
            int total = -1,
                totalFrom = -1;
            for (int r = first; r < first + sp; r++)
            {
                int d = Declared(r);
                if (d < 0)
                    continue;
                if (total >= 0 && d != total)
                {
                    throw new ArgumentException(
                        $"ranks {totalFrom} and {r} of SP group {group} disagree on the token count T: {total} vs "
                            + $"{d} (seen on rank {EpRank})"
                    );
                }
                total = d;
                totalFrom = r;
            }
            if (_config.Layout == SequenceLayout.Replicated)
                continue;

            int sum = 0;
            for (int r = first; r < first + sp; r++)
                sum += Real(r);
            if (total < 0)
                total = sum;
            int start = 0;
            for (int r = first; r < first + sp; r++)
            {
                SequenceShard expected = SequenceShard.For(_config.Sharding, total, sp, r - first);
                if (Real(r) != expected.RealRows)
                {
                    throw new ArgumentException(
                        $"rank {r} (SP rank {r - first} of group {group}) holds {Real(r)} tokens but "
                            + $"{_config.Sharding} "
                            + $"sharding of T = {total} over {sp} ranks gives it {expected.RealRows} (seen on rank "
                            + $"{EpRank})"
                    );
                }
                if (r == EpRank)
                    mine = expected with { Start = Math.Min(start, total) };
                start += Real(r);
            }
        }
        // Every rank's header was read, its own included: a shard left open is resolved now.
        return mine
            ?? throw new InvalidOperationException($"the count exchange did not resolve the shard (rank {EpRank})");
    }

    /// <inheritdoc />
    public void ExchangeRows(
        Tensor send,
        ImmutableArray<int> sendRows,
        Tensor receive,
        ImmutableArray<int> receiveRows
    ) => MoveRows(send, sendRows, receive, receiveRows, overlap: false);

    /// <inheritdoc />
    public CollectiveRequest StartExchangeRows(
        Tensor send,
        ImmutableArray<int> sendRows,
        Tensor receive,
        ImmutableArray<int> receiveRows
    ) => MoveRows(send, sendRows, receive, receiveRows, overlap: true);

    /// <summary>
    /// The row all-to-all-v through the world's tensor collectives, whatever memory and row type the rows have. With
    /// <paramref name="overlap"/> it returns once the exchange is started.
    /// </summary>
    private CollectiveRequest MoveRows(
        Tensor send,
        ImmutableArray<int> sendRows,
        Tensor receive,
        ImmutableArray<int> receiveRows,
        bool overlap
    )
    {
        int d = send.RowLength;
        int[] sendCounts = ToElements(sendRows, d),
            receiveCounts = ToElements(receiveRows, d);
        LastRowBytesSent = sendCounts.Sum(n => (long)n) * send.DType.SizeOf();
        if (overlap)
            return _groups.World.AllToAllVAsync(send, sendCounts, receive, receiveCounts);
        _groups.World.AllToAllV(send, sendCounts, receive, receiveCounts);
        return CollectiveRequest.Completed;
    }

    /// <inheritdoc />
    public long LastRowBytesSent { get; private set; }

    /// <inheritdoc />
    public bool PlacesRows(Tensor rows) => _groups.World is InProcessProcessGroup && rows.IsOnHost;

    /// <inheritdoc />
    public CollectiveRequest ExchangePlacedRows(
        Tensor send,
        ImmutableArray<int> sendRows,
        ChunkBlocks? sendBlocks,
        Tensor receive,
        ImmutableArray<int> receiveRows,
        ChunkBlocks? receiveBlocks,
        bool overlap
    )
    {
        int d = send.RowLength;
        LastRowBytesSent = sendRows.Sum(n => (long)n) * d * send.DType.SizeOf();
        return InProcessBlockExchange.AllToAllV(
            (InProcessProcessGroup)_groups.World,
            send,
            ToElements(sendRows, d),
            sendBlocks,
            receive,
            ToElements(receiveRows, d),
            receiveBlocks,
            wait: !overlap
        );
    }

    /// <inheritdoc />
    public void ReadPeerRows(
        Tensor send,
        ImmutableArray<int> sendRows,
        ChunkBlocks? sendBlocks,
        ImmutableArray<int> receiveRows,
        Action<nint[]> read
    )
    {
        int d = send.RowLength;
        InProcessBlockExchange.ReadPeerRows(
            (InProcessProcessGroup)_groups.World,
            send,
            ToElements(sendRows, d),
            sendBlocks,
            ToElements(receiveRows, d),
            read
        );
    }

    /// <inheritdoc />
    public double LastCountExchangeMilliseconds { get; private set; }

    /// <inheritdoc />
    public long LastCountExchangeStarted { get; private set; }

    /// <inheritdoc />
    public TrafficReport GatherTraffic(TrafficReport partial, ReadOnlySpan<long> arrivals) =>
        TrafficCollection.Gather(_groups.World, partial, EpRank, arrivals);

    /// <inheritdoc />
    public void SumOverSequenceParallel(Tensor values)
    {
        // bfloat16 rows are summed in float32 and rounded once. In the replicated layout each row is non-zero on one SP
        // rank only, so the sum is that rank's value, exactly.
        _groups.SequenceParallel?.AllReduceSum(values);
    }

    /// <summary>Row counts as element counts, each checked against one exchange's 2^31 elements.</summary>
    private int[] ToElements(ImmutableArray<int> rows, int dim)
    {
        var elements = new int[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            long n = (long)rows[i] * dim;
            if (n > int.MaxValue)
            {
                throw new InvalidOperationException(
                    $"{rows[i]} rows of {dim} elements exceed one exchange's 2^31 elements (rank {EpRank})"
                );
            }
            elements[i] = (int)n;
        }
        return elements;
    }
}
