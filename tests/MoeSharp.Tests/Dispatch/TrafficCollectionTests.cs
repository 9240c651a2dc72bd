using System.Runtime.InteropServices;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Telemetry;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// <see cref="TokenDispatcherConfig.CollectTraffic"/>: the report's matrix is what the exchange moved, every rank holds
/// the same bits, and collecting changes no result.
/// </summary>
public class TrafficCollectionTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private const int World = 4,
        Experts = 8,
        TopK = 2,
        Dim = 3;

    /// <summary>One rank's view after dispatch and combine.</summary>
    private sealed record RankRun(
        int Rank,
        int[] SentPerExpert,
        int[] InputSplits,
        int[] OutputSplits,
        int RowsReceived,
        TrafficReport? Dispatched,
        TrafficReport? Combined,
        TrafficReport? Last,
        byte[] Routed,
        byte[] Output
    );

    /// <summary>
    /// Uneven routing on purpose: ranks hold 5, 8, 11, 14 tokens; every token's first slot goes to rank 0's experts
    /// (0 or 1), its second to one of experts 2..7, skewed by the rank.
    /// </summary>
    private static (Tensor X, Tensor Scores, Tensor Ids) Inputs(int rank)
    {
        int tokens = 5 + 3 * rank;
        var x = new float[tokens * Dim];
        var scores = new float[tokens * TopK];
        var ids = new int[tokens * TopK];
        for (int t = 0; t < tokens; t++)
        {
            for (int j = 0; j < Dim; j++)
                x[t * Dim + j] = rank * 100 + t + j * 0.25f;
            ids[t * TopK] = (rank + t) % 2;
            ids[t * TopK + 1] = 2 + (t * rank) % 6;
            scores[t * TopK] = 0.75f;
            scores[t * TopK + 1] = 0.25f + t * 0.01f;
        }
        return (
            Tensor.FromArray(x, tokens, Dim),
            Tensor.FromArray(scores, tokens, TopK),
            Tensor.FromArray(ids, tokens, TopK)
        );
    }

    private static RankRun[] Run(bool collect, int lateRank = -1, int lateMilliseconds = 0) =>
        InProcessWorld.Run(
            World,
            world =>
            {
                using var groups = ParallelGroups.Create(world, 1);
                var dispatcher = new AllToAllTokenDispatcher(
                    new TokenDispatcherConfig(Experts, TopK) { CollectTraffic = collect },
                    groups
                );
                (Tensor x, Tensor scores, Tensor ids) = Inputs(world.Rank);
                if (world.Rank == lateRank)
                    Thread.Sleep(lateMilliseconds);
                var sent = new int[Experts];
                foreach (int id in ids.AsSpan<int>())
                    sent[id]++;
                DispatchResult result = dispatcher.Dispatch(x, scores, ids);
                byte[] routed = result.RoutedTokens.AsBytes().ToArray();
                Tensor output = dispatcher.Combine(result.RoutedTokens, result.Metadata, x);
                DispatchMetadata m = result.Metadata;
                return new RankRun(
                    world.Rank,
                    sent,
                    [.. m.InputSplits],
                    [.. m.OutputSplits],
                    m.RowsReceived,
                    result.Traffic,
                    m.Traffic,
                    dispatcher.LastTraffic,
                    routed,
                    output.AsBytes().ToArray()
                );
            },
            Timeout
        );

    [Fact]
    public void Matrix_IsWhatEachRankSent_PerExpertAndPerPeer()
    {
        RankRun[] ranks = Run(collect: true);
        TrafficReport report = ranks[0].Dispatched!;
        Assert.Equal(World, report.WorldSize);
        Assert.Equal(Experts, report.NumExperts);
        long[,] between = report.RowsBetweenRanks();
        long[,] bytesBetween = report.BytesBetweenRanks();
        foreach (RankRun r in ranks)
        {
            for (int e = 0; e < Experts; e++)
                Assert.Equal(r.SentPerExpert[e], report.Rows(r.Rank, e));
            for (int q = 0; q < World; q++)
            {
                // The dispatch plan's splits: what this rank sent q, and what q received from it.
                Assert.Equal(r.InputSplits[q], between[r.Rank, q]);
                Assert.Equal(ranks[q].OutputSplits[r.Rank], between[r.Rank, q]);
                Assert.Equal((long)r.InputSplits[q] * Dim * sizeof(float), bytesBetween[r.Rank, q]);
            }
            Assert.Equal(r.RowsReceived, report.RowsPerRank()[r.Rank]);
        }
        // Every first slot lands on rank 0: the load is uneven, and the balancedness says so.
        long[] perRank = report.RowsPerRank();
        Assert.Equal(perRank.Max(), perRank[0]);
        Assert.Equal((double)perRank.Sum() / World / perRank[0], report.RankBalancedness);
        Assert.True(report.RankBalancedness < 1);
        Assert.Equal(ranks.Sum(r => r.SentPerExpert.Sum()), report.TotalRows);
    }

    [Fact]
    public void EveryRank_HoldsBitwiseTheSameReport_AfterDispatchAndAfterCombine()
    {
        RankRun[] ranks = Run(collect: true);
        foreach (RankRun r in ranks.Skip(1))
        {
            AssertSameBits(ranks[0].Dispatched!, r.Dispatched!);
            AssertSameBits(ranks[0].Combined!, r.Combined!);
        }
        foreach (RankRun r in ranks)
        {
            TrafficReport dispatched = r.Dispatched!,
                combined = r.Combined!;
            Assert.Same(combined, r.Last);
            Assert.NotSame(dispatched, combined);
            // Combine adds only the back waits: the matrix and the dispatch's waits are unchanged.
            Assert.True(dispatched.RowCounts.SequenceEqual(combined.RowCounts));
            Assert.True(dispatched.ByteCounts.SequenceEqual(combined.ByteCounts));
            for (int rank = 0; rank < World; rank++)
            {
                Assert.Equal(0.0, dispatched.ExchangeWaitMilliseconds[rank * 3 + (int)TrafficExchange.RowsBack]);
                for (int x = 0; x < 2; x++)
                {
                    Assert.Equal(
                        dispatched.ExchangeWaitMilliseconds[rank * 3 + x],
                        combined.ExchangeWaitMilliseconds[rank * 3 + x]
                    );
                }
            }
            foreach (double ms in combined.ExchangeWaitMilliseconds)
                Assert.True(ms >= 0 && double.IsFinite(ms));
            // Each peer wait is part of the rank's time in the exchanges: never negative, never more than all of it.
            for (int rank = 0; rank < World; rank++)
            {
                double inExchanges = 0;
                for (int x = 0; x < 3; x++)
                    inExchanges += combined.ExchangeWaitMilliseconds[rank * 3 + x];
                Assert.Equal(0.0, combined.WaitMilliseconds[rank * World + rank]);
                for (int peer = 0; peer < World; peer++)
                {
                    double ms = combined.WaitMilliseconds[rank * World + peer];
                    Assert.True(ms >= 0 && ms <= inExchanges, $"rank {rank} waited {ms} ms for {peer}");
                }
            }
        }
    }

    [Fact]
    public void PeerWaits_NameTheRankThatArrivedLate()
    {
        const int late = 2,
            delayMs = 300;
        RankRun[] ranks = Run(collect: true, lateRank: late, lateMilliseconds: delayMs);
        TrafficReport report = ranks[0].Combined!;
        for (int rank = 0; rank < World; rank++)
        {
            if (rank == late)
                continue;
            // The others sat in the count exchange until the late rank came: most of the delay is a wait for it.
            double forLate = report.WaitMilliseconds[rank * World + late];
            Assert.True(forLate >= delayMs / 2, $"rank {rank} waited {forLate} ms for the late rank");
            for (int peer = 0; peer < World; peer++)
            {
                if (peer != late)
                    Assert.True(report.WaitMilliseconds[rank * World + peer] < forLate);
            }
        }
        // The late rank found everyone there: it waited for no one as long as they waited for it.
        for (int peer = 0; peer < World; peer++)
            Assert.True(report.WaitMilliseconds[late * World + peer] < delayMs / 2);
    }

    [Fact]
    public void OffByDefault_NoReport_AndResultsAreBitwiseTheSameOnAndOff()
    {
        Assert.False(new TokenDispatcherConfig(Experts, TopK).CollectTraffic);
        RankRun[] off = Run(collect: false),
            on = Run(collect: true);
        for (int r = 0; r < World; r++)
        {
            Assert.Null(off[r].Dispatched);
            Assert.Null(off[r].Combined);
            Assert.Null(off[r].Last);
            Assert.Equal(off[r].Routed, on[r].Routed);
            Assert.Equal(off[r].Output, on[r].Output);
        }
    }

    [Fact]
    public void OneRank_ReportsItsOwnRowsOnTheDiagonal()
    {
        var dispatcher = new LocalTokenDispatcher(new TokenDispatcherConfig(Experts, TopK) { CollectTraffic = true });
        (Tensor x, Tensor scores, Tensor ids) = Inputs(2);
        DispatchResult result = dispatcher.Dispatch(x, scores, ids);
        TrafficReport report = result.Traffic!;
        Assert.Equal(1, report.WorldSize);
        Assert.Equal((long)ids.AsSpan<int>().Length, report.RowsBetweenRanks()[0, 0]);
        for (int e = 0; e < Experts; e++)
            Assert.Equal(result.Metadata.ExpertCounts[e], report.Rows(0, e));
        Assert.All(report.ExchangeWaitMilliseconds.ToArray(), ms => Assert.Equal(0.0, ms));
        _ = dispatcher.Combine(result.RoutedTokens, result.Metadata, x);
        Assert.Same(result.Metadata.Traffic, dispatcher.LastTraffic);
    }

    private static void AssertSameBits(TrafficReport expected, TrafficReport actual)
    {
        Assert.True(expected.RowCounts.SequenceEqual(actual.RowCounts));
        Assert.True(expected.ByteCounts.SequenceEqual(actual.ByteCounts));
        Assert.True(
            MemoryMarshal
                .AsBytes(expected.WaitMilliseconds)
                .SequenceEqual(MemoryMarshal.AsBytes(actual.WaitMilliseconds))
        );
        Assert.True(
            MemoryMarshal
                .AsBytes(expected.ExchangeWaitMilliseconds)
                .SequenceEqual(MemoryMarshal.AsBytes(actual.ExchangeWaitMilliseconds))
        );
    }
}
