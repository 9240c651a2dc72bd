using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Experts;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// A failure on one rank surfaces on every other rank's dispatcher call as a <see cref="CollectiveException"/>
/// naming it, and <see cref="InProcessWorld.Run{T}"/> reports that rank, well within the timeout.
/// </summary>
public class DispatchFailureTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private const int World = 4;

    private static GroupInputs[] Inputs(int groups) =>
        Enumerable
            .Range(0, groups)
            .Select(g => RandomInputs.Create(new Random(g), 9, 4, 8, 2, DType.Int32, signedScores: true))
            .ToArray();

    /// <summary>
    /// Runs the world; each rank's body returns the first exception its dispatcher calls threw (or null).
    /// </summary>
    private static (RankFailedException Error, TimeSpan Elapsed) RunFailing(
        int sp,
        Func<IProcessGroup, AllToAllTokenDispatcher, GroupInputs, Exception?> body
    )
    {
        GroupInputs[] inputs = Inputs(World / sp);
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                World,
                world =>
                {
                    using var groups = ParallelGroups.Create(world, sp);
                    var dispatcher = new AllToAllTokenDispatcher(new TokenDispatcherConfig(8, 2), groups);
                    Exception? seen = body(world, dispatcher, inputs[groups.DataParallelIndex]);
                    if (seen is not null)
                        throw seen;
                },
                Timeout
            )
        );
        return (error, clock.Elapsed);
    }

    private static void AssertPeersNamed(RankFailedException error, int failed, Exception original, TimeSpan elapsed)
    {
        Assert.True(elapsed < Timeout / 2, $"took {elapsed}: the failure did not wake the peers");
        Assert.Equal(failed, error.Rank);
        Assert.Same(original, error.InnerException);
        for (int r = 0; r < World; r++)
        {
            if (r == failed)
                continue;
            var peer = Assert.IsType<CollectiveException>(error.RankErrors[r]);
            Assert.Equal(failed, peer.FailedRank);
            Assert.Contains($"rank {failed}", peer.Message);
        }
    }

    private static Exception? Catch(Action action)
    {
        try
        {
            action();
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void RankThrowsBeforeDispatch_PeersDispatchThrows(int sp)
    {
        var boom = new InvalidOperationException("boom before dispatch");
        var (error, elapsed) = RunFailing(
            sp,
            (world, dispatcher, g) =>
            {
                if (world.Rank == 2)
                    throw boom;
                return Assert.Throws<CollectiveException>(() => dispatcher.Dispatch(g.X, g.Scores, g.Ids));
            }
        );
        AssertPeersNamed(error, 2, boom, elapsed);
    }

    [Fact]
    public void RankThrowsInItsExperts_PeersCombineThrows()
    {
        var boom = new InvalidOperationException("boom in the experts");
        var (error, elapsed) = RunFailing(
            1,
            (world, dispatcher, g) =>
            {
                DispatchResult d = dispatcher.Dispatch(g.X, g.Scores, g.Ids);
                if (world.Rank == 1)
                    throw boom;
                Tensor y = ScaledIdentityExperts.Apply(d.RoutedTokens, d.TokensPerLocalExpert.AsSpan(), world.Rank * 2);
                return Assert.Throws<CollectiveException>(() => dispatcher.Combine(y, d.Metadata, g.X));
            }
        );
        AssertPeersNamed(error, 1, boom, elapsed);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void RankThrowsInSharedExperts_ItsErrorPropagates_AndPeersFailNamingIt(int sp)
    {
        // The failing rank still completes the combine exchange it started (so no peer waits on its buffers),
        // so a peer's Combine may finish; its next collective (the SP reduce, or a barrier) must then fail.
        var boom = new InvalidOperationException("boom in the shared experts");
        var (error, elapsed) = RunFailing(
            sp,
            (world, dispatcher, g) =>
            {
                DispatchResult d = dispatcher.Dispatch(g.X, g.Scores, g.Ids);
                Tensor y = ScaledIdentityExperts.Apply(d.RoutedTokens, d.TokensPerLocalExpert.AsSpan(), world.Rank * 2);
                if (world.Rank == 3)
                {
                    Assert.Same(
                        boom,
                        Assert.Throws<InvalidOperationException>(() =>
                            dispatcher.Combine(y, d.Metadata, g.X, _ => throw boom)
                        )
                    );
                    throw boom;
                }
                return Catch(() =>
                {
                    Tensor output = dispatcher.Combine(y, d.Metadata, g.X, own => own.Clone());
                    dispatcher.ReduceSequenceParallel(output);
                    world.Barrier();
                });
            }
        );
        AssertPeersNamed(error, 3, boom, elapsed);
    }

    [Fact]
    public void RankWithABadExpertId_FailsWithItsArgumentError_PeersNameIt()
    {
        var (error, elapsed) = RunFailing(
            2,
            (world, dispatcher, g) =>
            {
                Tensor ids = g.Ids.Clone();
                if (world.Rank == 0)
                    ids.AsSpan<int>()[3] = 8;
                return Catch(() => dispatcher.Dispatch(g.X, g.Scores, ids));
            }
        );
        Assert.True(elapsed < Timeout / 2, $"took {elapsed}");
        Assert.Equal(0, error.Rank);
        var inner = Assert.IsType<ArgumentOutOfRangeException>(error.InnerException);
        Assert.Contains("token 1, slot 1", inner.Message);
        for (int r = 1; r < World; r++)
            Assert.Equal(0, Assert.IsType<CollectiveException>(error.RankErrors[r]).FailedRank);
    }
}
