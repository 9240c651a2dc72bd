using System.Diagnostics;
using MoeSharp.Collectives;

namespace MoeSharp.Tests.Collectives;

/// <summary>
/// A failure on one rank surfaces on every rank as a <see cref="CollectiveException"/> naming it, and
/// nothing hangs. Timeouts here are long where the test expects an abort (the abort, not the timeout,
/// must end the wait) and short where it expects a timeout.
/// </summary>
public class FailureTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    /// <summary>Blocks a rank until its world has failed, so it neither arrives nor exits.</summary>
    private static void WaitForWorldFailure(IProcessGroup g)
    {
        var group = (InProcessProcessGroup)g;
        var clock = Stopwatch.StartNew();
        while (group.Failure is null && clock.Elapsed < Long)
            Thread.Sleep(5);
    }

    [Fact]
    public void RankThrows_PeersCollectivesThrowNamingIt_AndRunCarriesTheOriginal()
    {
        var boom = new InvalidOperationException("boom");
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                4,
                g =>
                {
                    g.Barrier();
                    if (g.Rank == 2)
                        throw boom;
                    g.AllReduceSum(new float[3].AsSpan());
                },
                Long
            )
        );

        Assert.True(clock.Elapsed < Long / 2, $"took {clock.Elapsed}: the abort did not wake the waiters");
        Assert.Equal(2, error.Rank);
        Assert.Same(boom, error.InnerException);
        Assert.Contains("rank 2 failed", error.Message);
        Assert.Contains("boom", error.Message);
        foreach (int r in new[] { 0, 1, 3 })
        {
            var peer = Assert.IsType<CollectiveException>(error.RankErrors[r]);
            Assert.Equal(2, peer.FailedRank);
            Assert.Contains($"rank {r}: AllReduceSum<Single> #1", peer.Message);
            Assert.Contains("rank 2 failed: InvalidOperationException: boom", peer.Message);
        }
    }

    [Fact]
    public void RankThrows_PendingAsyncExchangeFails_AndLaterCollectivesThrowAtOnce()
    {
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                3,
                g =>
                {
                    if (g.Rank == 1)
                        throw new ArgumentException("bad input on rank 1");
                    var request = g.AllToAllVAsync<int>(new int[3], [1, 1, 1], new int[3], [1, 1, 1]);
                    var wait = Assert.Throws<CollectiveException>(request.Wait);
                    Assert.Equal(1, wait.FailedRank);
                    Assert.Contains("bad input on rank 1", wait.Message);
                    var later = Assert.Throws<CollectiveException>(g.Barrier);
                    Assert.Equal(1, later.FailedRank);
                    throw later;
                },
                Long
            )
        );

        Assert.Equal(1, error.Rank);
        Assert.IsType<ArgumentException>(error.InnerException);
    }

    [Fact]
    public void FailureInASubGroup_AbortsTheWorldAndOtherSubGroups()
    {
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                8,
                g =>
                {
                    var pair = g.Split(g.Rank / 2, 0);
                    if (g.Rank == 5)
                        throw new InvalidOperationException("expert 5 exploded");
                    if (g.Rank % 2 == 0)
                        pair.Barrier(); // rank 4 waits in its pair with rank 5
                    g.Barrier();
                },
                Long
            )
        );

        Assert.Equal(5, error.Rank);
        foreach (int r in new[] { 0, 1, 2, 3, 4, 6, 7 })
        {
            var peer = Assert.IsType<CollectiveException>(error.RankErrors[r]);
            Assert.Equal(5, peer.FailedRank);
            Assert.Contains("expert 5 exploded", peer.Message);
        }

        Assert.Contains("group [4, 5]", error.RankErrors[4]!.Message);
    }

    [Fact]
    public void MissingRank_TimesOutNamingIt()
    {
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                3,
                g =>
                {
                    if (g.Rank == 1)
                        WaitForWorldFailure(g); // skips the collective but stays alive
                    else
                        g.AllReduceSum(new double[2].AsSpan());
                },
                TimeSpan.FromMilliseconds(500)
            )
        );

        Assert.Contains(error.Rank, new[] { 0, 2 });
        var timedOut = Assert.IsType<CollectiveException>(error.InnerException);
        Assert.Matches(
            @"rank [02]: AllReduceSum<Double> #0 of world timed out after 0\.5 s waiting for ranks \[1\]",
            timedOut.Message
        );
        Assert.Equal(1, timedOut.FailedRank);
        Assert.Null(error.RankErrors[1]);
        var other = Assert.IsType<CollectiveException>(error.RankErrors[2 - error.Rank]);
        Assert.Equal(1, other.FailedRank);
        Assert.Contains("waiting for ranks [1]", other.Message);
    }

    [Fact]
    public void MissingRank_TimesOutAnAsyncExchange()
    {
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                2,
                g =>
                {
                    if (g.Rank == 1)
                    {
                        WaitForWorldFailure(g);
                        return;
                    }

                    g.AllToAllVAsync<long>(new long[2], [1, 1], new long[2], [1, 1]).Wait();
                },
                TimeSpan.FromMilliseconds(300)
            )
        );

        Assert.Equal(0, error.Rank);
        var timedOut = Assert.IsType<CollectiveException>(error.InnerException);
        Assert.Contains("AllToAllV<Int64> #0 of world timed out", timedOut.Message);
        Assert.Equal(1, timedOut.FailedRank);
    }

    [Fact]
    public void RankThatReturnsEarly_FailsPeersWaitingForIt_WithoutWaitingForTheTimeout()
    {
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                3,
                g =>
                {
                    if (g.Rank != 2)
                        g.Barrier();
                },
                Long
            )
        );

        Assert.True(clock.Elapsed < Long / 2, $"took {clock.Elapsed}");
        var peer = Assert.IsType<CollectiveException>(error.InnerException);
        Assert.Equal(2, peer.FailedRank);
        Assert.Contains("rank 2 exited without calling it", peer.Message);
    }

    [Fact]
    public void DifferentCollectives_AtTheSameStep_FailEveryRank()
    {
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                2,
                g =>
                {
                    if (g.Rank == 0)
                        g.Barrier();
                    else
                        g.AllReduceSum(new long[1].AsSpan());
                },
                Long
            )
        );

        foreach (var e in error.RankErrors)
        {
            var ce = Assert.IsType<CollectiveException>(e);
            Assert.Contains("collective mismatch at #0 of world", ce.Message);
            Assert.Contains("called Barrier", ce.Message);
            Assert.Contains("called AllReduceSum<Int64>", ce.Message);
        }
    }

    [Fact]
    public void DifferentElementTypes_FailEveryRank()
    {
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                2,
                g =>
                {
                    if (g.Rank == 0)
                        g.AllGather<int>([1], new int[2]);
                    else
                        g.AllGather<float>([1f], new float[2]);
                },
                Long
            )
        );

        Assert.All(
            error.RankErrors,
            e => Assert.Contains("AllGather<Int32>", Assert.IsType<CollectiveException>(e).Message)
        );
        Assert.All(error.RankErrors, e => Assert.Contains("AllGather<Single>", e!.Message));
    }

    [Fact]
    public void InconsistentCounts_NameSenderReceiverAndBothValues()
    {
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                3,
                g =>
                {
                    // Rank 0 sends 2 elements to rank 1, but rank 1 expects 3 from rank 0.
                    int[] sendCounts = [1, g.Rank == 0 ? 2 : 1, 1];
                    int[] receiveCounts = [g.Rank == 1 ? 3 : 1, 1, 1];
                    g.AllToAllV<int>(new int[5], sendCounts, new int[5], receiveCounts);
                },
                Long
            )
        );

        Assert.All(
            error.RankErrors,
            e =>
                Assert.Contains(
                    "rank 0 sends 2 elements to rank 1 but rank 1 expects 3 from rank 0",
                    Assert.IsType<CollectiveException>(e).Message
                )
        );
    }

    [Fact]
    public void UnequalAllToAllChunks_AndAllReduceLengths_AreDetected()
    {
        var chunks = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                2,
                g =>
                {
                    int n = g.Rank == 0 ? 2 : 4;
                    g.AllToAll<int>(new int[n], new int[n]);
                },
                Long
            )
        );
        Assert.Contains(
            "rank 0 sends 1 elements to rank 1 but rank 1 expects 2 from rank 0",
            chunks.InnerException!.Message
        );

        var lengths = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(2, g => g.AllReduceSum(new float[g.Rank + 1].AsSpan()), Long)
        );
        Assert.Contains("rank 1 passes 2 values but rank 0 passes 1", lengths.InnerException!.Message);
    }

    [Fact]
    public void ArgumentErrors_NameTheArgumentTheValueAndTheRank()
    {
        var g = InProcessProcessGroup.CreateWorld(3)[1];

        var e = Assert.Throws<ArgumentException>(() => g.AllToAll<int>(new int[4], new int[4]));
        Assert.Equal("send", e.ParamName);
        Assert.Contains("rank 1: send has 4 elements, not a multiple of the group size 3", e.Message);

        e = Assert.Throws<ArgumentException>(() => g.AllToAll<int>(new int[3], new int[6]));
        Assert.Equal("receive", e.ParamName);

        e = Assert.Throws<ArgumentException>(() => g.AllToAllV<int>(new int[3], [1, 1], new int[3], [1, 1, 1]));
        Assert.Equal("sendCounts", e.ParamName);
        Assert.Contains("has 2 entries but the group has 3 ranks", e.Message);

        e = Assert.Throws<ArgumentException>(() => g.AllToAllV<int>(new int[3], [1, 1, 1], new int[3], [1, -4, 1]));
        Assert.Equal("receiveCounts", e.ParamName);
        Assert.Contains("receiveCounts[1] = -4 is negative", e.Message);

        e = Assert.Throws<ArgumentException>(() => g.AllToAllV<int>(new int[3], [1, 2, 1], new int[3], [1, 1, 1]));
        Assert.Equal("send", e.ParamName);
        Assert.Contains("add up to 4 elements but send holds 3", e.Message);

        e = Assert.Throws<ArgumentException>(() => g.AllToAllVAsync<int>(new int[3], [1, 1, 1], new int[2], [1, 1, 1]));
        Assert.Equal("receive", e.ParamName);

        e = Assert.Throws<ArgumentException>(() => g.AllGather<int>(new int[2], new int[5]));
        Assert.Equal("receive", e.ParamName);
        Assert.Contains("needs 6", e.Message);

        Assert.Throws<ArgumentOutOfRangeException>(() => InProcessProcessGroup.CreateWorld(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => InProcessProcessGroup.CreateWorld(2, TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => InProcessProcessGroup.CreateWorld(2, TimeSpan.FromDays(30)));
        InProcessProcessGroup.CreateWorld(1, Timeout.InfiniteTimeSpan)[0].Barrier();
    }

    [Fact]
    public void Dispose_IsIdempotent_AndLaterCallsThrow()
    {
        var g = InProcessProcessGroup.CreateWorld(1)[0];
        g.Barrier();
        g.Dispose();
        g.Dispose();
        Assert.Throws<ObjectDisposedException>(g.Barrier);
    }

    [Fact]
    public void Abort_MakesLaterCollectivesThrowAtOnce_FirstFailureWins()
    {
        var world = InProcessProcessGroup.CreateWorld(2);
        world[1].Abort(new TimeoutException("first"));
        world[0].Abort(new TimeoutException("second"));
        var e = Assert.Throws<CollectiveException>(() => world[0].AllReduceSum(new float[1].AsSpan()));
        Assert.Equal(1, e.FailedRank);
        Assert.Contains("rank 1 failed: TimeoutException: first", e.Message);
        Assert.Throws<CollectiveException>(() => world[1].AllToAllVAsync<int>(new int[2], [1, 1], new int[2], [1, 1]));
    }
}
