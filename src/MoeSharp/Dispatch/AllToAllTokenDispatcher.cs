using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// The expert-parallel dispatcher (EP &gt; 1): counts are exchanged with an all-to-all, rows with an
/// all-to-all-v to the ranks that own their experts, and back again at combine (overlapped with the shared
/// experts). Works for EP = 1 too, through the same exchanges.
/// </summary>
/// <remarks>
/// The count exchange also carries each rank's view of the sequence (T and its shard's rows), so every rank
/// checks every SP group's agreement on T from the same data and all ranks throw the same error instead of
/// some hanging.
/// </remarks>
public sealed class AllToAllTokenDispatcher : TokenDispatcher
{
    /// <summary>Entries after the E/S counts in each count message: declared T, real rows, pad rows.</summary>
    private const int HeaderLength = 3;

    private readonly ParallelGroups _groups;

    /// <summary>Creates a dispatcher over <paramref name="groups"/> (EP = the world, SP groups of consecutive ranks).</summary>
    /// <exception cref="ArgumentException">E is not divisible by the EP size, or K &gt; E.</exception>
    /// <param name="config">What to route.</param>
    /// <param name="groups">EP and SP groups.</param>
    /// <param name="kernels">Compute backend; the host kernels when null.</param>
    /// <param name="pool">Where tensors come from; a new pool when null.</param>
    public AllToAllTokenDispatcher(TokenDispatcherConfig config, ParallelGroups groups, IMoeKernels? kernels = null, TensorPool? pool = null)
        : base(config, CheckGroups(groups).EpSize, groups.World.Rank, groups.SpSize, groups.SpRank, kernels, pool)
    {
        _groups = groups;
    }

    private static ParallelGroups CheckGroups(ParallelGroups groups) => groups ?? throw new ArgumentNullException(nameof(groups));

    private protected override int WorldRankOf(int epRank) => _groups.World.WorldRanks[epRank];

    private protected override void CheckReplicasAgree(Tensor topScores, Tensor expertIds)
        => ReplicaHash.CheckAgreement(_groups.World, SpSize, ReplicaHash.Of(topScores, expertIds));

    private protected override bool ExchangesCountsOnDevice => !Kernels.IsHost;

    private protected override DeviceCountExchange ScanAndExchangeCountsOnDevice(Tensor topScores, Tensor expertIds, int rowOffset, SequenceShard shard,
        int? declaredTotalTokens, Tensor ids, Tensor entryScores)
    {
        // Each message: the E/S counts, the header, and an "invalid entries" flag.
        int s = EpSize, e = NumLocalExperts, chunk = e + HeaderLength + 1, experts = Config.NumExperts;
        int messages = s * chunk, padEntries = shard.PadRows * Config.TopK;
        // One int32 block: the received messages first, this rank's scan after them, so one copy brings both.
        Tensor block = Pool.Rent(DType.Int32, messages + EntryScanWords.Length(experts));
        Tensor send = Pool.Rent(DType.Int32, messages);
        int[] words;
        try
        {
            Kernels.ScanEntries(topScores, expertIds, rowOffset, shard.RealRows, shard.PadRows, experts, ids, entryScores, block, messages);
            Kernels.PackCountMessages(block, messages, s, e, padEntries, MessageHeader(shard, declaredTotalTokens), send);
            int[] sizes = Enumerable.Repeat(chunk, s).ToArray();
            _groups.World.AllToAllV(send, sizes, block, sizes);
            words = block.ToHost().AsSpan<int>().ToArray();
        }
        finally
        {
            Pool.Return(send);
            Pool.Return(block);
        }

        EntryScan scan = EntryScanWords.Decode(words.AsSpan(messages), experts, padEntries);
        for (int p = 0; p < s; p++)
        {
            if (words[p * chunk + chunk - 1] != 0) return new DeviceCountExchange(scan, null, p);
        }
        return new DeviceCountExchange(scan, ReadCountMessages(words, chunk, shard), -1);
    }

    private protected override ExchangedCounts ExchangeCounts(int[] counts, SequenceShard shard, int? declaredTotalTokens)
    {
        int s = EpSize, e = NumLocalExperts, chunk = e + HeaderLength;
        var send = new int[s * chunk];
        var receive = new int[s * chunk];
        int[] header = MessageHeader(shard, declaredTotalTokens);
        for (int q = 0; q < s; q++)
        {
            counts.AsSpan(q * e, e).CopyTo(send.AsSpan(q * chunk, e));
            header.CopyTo(send.AsSpan(q * chunk + e));
        }
        _groups.World.AllToAll<int>(send, receive);
        return ReadCountMessages(receive, chunk, shard);
    }

    /// <summary>What every count message carries after its E/S counts (<see cref="HeaderLength"/> values): declared T (-1 when unknown), real rows, pad rows.</summary>
    private int[] MessageHeader(SequenceShard shard, int? declaredTotalTokens)
        => [Config.Layout == SequenceLayout.Replicated ? shard.TotalTokens : declaredTotalTokens ?? -1, shard.RealRows, shard.PadRows];

    /// <summary>The counts of the received messages (<paramref name="chunk"/> values each, from rank 0 on), after the sequence checks.</summary>
    private ExchangedCounts ReadCountMessages(int[] messages, int chunk, SequenceShard shard)
    {
        int s = EpSize, e = NumLocalExperts;
        var receiveCounts = new int[s * e];
        for (int p = 0; p < s; p++) messages.AsSpan(p * chunk, e).CopyTo(receiveCounts.AsSpan(p * e, e));
        return new ExchangedCounts(receiveCounts, CheckSequenceAgreement(messages, chunk, e, shard));
    }

    /// <summary>
    /// Checks, from every rank's header, that each SP group agrees on T and that each rank's shard is the
    /// one the policy gives it; every rank runs the same check on the same data.
    /// </summary>
    private SequenceShard CheckSequenceAgreement(int[] receive, int chunk, int e, SequenceShard shard)
    {
        int sp = SpSize;
        SequenceShard mine = shard;
        for (int group = 0; group < EpSize / sp; group++)
        {
            int first = group * sp;
            int Declared(int rank) => receive[rank * chunk + e];
            int Real(int rank) => receive[rank * chunk + e + 1];

            int total = -1, totalFrom = -1;
            for (int r = first; r < first + sp; r++)
            {
                int d = Declared(r);
                if (d < 0) continue;
                if (total >= 0 && d != total)
                {
                    throw new ArgumentException(
                        $"ranks {totalFrom} and {r} of SP group {group} disagree on the token count T: {total} vs {d} (seen on rank {EpRank})");
                }
                total = d;
                totalFrom = r;
            }
            if (Config.Layout == SequenceLayout.Replicated) continue;

            int sum = 0;
            for (int r = first; r < first + sp; r++) sum += Real(r);
            if (total < 0) total = sum;
            int start = 0;
            for (int r = first; r < first + sp; r++)
            {
                SequenceShard expected = SequenceShard.For(Config.Sharding, total, sp, r - first);
                if (Real(r) != expected.RealRows)
                {
                    throw new ArgumentException(
                        $"rank {r} (SP rank {r - first} of group {group}) holds {Real(r)} tokens but {Config.Sharding} sharding of T = {total} over {sp} ranks gives it {expected.RealRows} (seen on rank {EpRank})");
                }
                if (r == EpRank) mine = expected with { Start = Math.Min(start, total) };
                start += Real(r);
            }
        }
        return mine;
    }

    private protected override void ExchangeRows(Tensor send, ReadOnlySpan<int> sendRows, Tensor receive, ReadOnlySpan<int> receiveRows)
        => _groups.World.AllToAllV(send, ToElements(sendRows, send.RowLength), receive,
            ToElements(receiveRows, send.RowLength));

    private protected override CollectiveRequest ExchangeRowsAsync(Tensor send, ReadOnlySpan<int> sendRows, Tensor receive, ReadOnlySpan<int> receiveRows)
        => _groups.World.AllToAllVAsync(send, ToElements(sendRows, send.RowLength), receive,
            ToElements(receiveRows, send.RowLength));

    private protected override void SumOverSequenceParallel(Tensor values)
    {
        // bfloat16 rows are summed in float32 and rounded once. In the replicated layout each row is non-zero on one SP
        // rank only, so the sum is that rank's value, exactly.
        _groups.SequenceParallel?.AllReduceSum(values);
    }

    private int[] ToElements(ReadOnlySpan<int> rows, int dim)
    {
        var elements = new int[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            long n = (long)rows[i] * dim;
            if (n > int.MaxValue)
            {
                throw new InvalidOperationException($"{rows[i]} rows of {dim} elements exceed one exchange's 2^31 elements (rank {EpRank})");
            }
            elements[i] = (int)n;
        }
        return elements;
    }
}
