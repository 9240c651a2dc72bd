using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// Bad inputs are rejected at the public entry points with ArgumentException-family errors naming the argument,
/// value and place; multi-rank mistakes fail on every rank within the timeout; a failed call leaves the
/// caller's tensors as they were.
/// </summary>
public class DispatchBadInputTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private static GroupInputs Inputs(
        int tokens = 6,
        int dim = 3,
        int experts = 8,
        int topK = 2,
        bool int64 = false,
        int seed = 3
    ) =>
        RandomInputs.Create(
            new Random(seed),
            tokens,
            dim,
            experts,
            topK,
            int64 ? DType.Int64 : DType.Int32,
            signedScores: true
        );

    private static void SetId(Tensor ids, int flat, long value)
    {
        if (ids.DType == DType.Int64)
            ids.AsSpan<long>()[flat] = value;
        else
            ids.AsSpan<int>()[flat] = checked((int)value);
    }

    [Theory]
    [InlineData(false, 8L)]
    [InlineData(false, 1000L)]
    [InlineData(false, -1L)]
    [InlineData(true, 8L)]
    [InlineData(true, -5L)]
    [InlineData(true, 1L << 33)]
    public void ExpertIdOutOfRange_NamesTokenSlotAndValue(bool int64, long bad)
    {
        GroupInputs g = Inputs(int64: int64);
        SetId(g.Ids, 4 * 2 + 1, bad); // token 4, slot 1
        var dispatcher = new LocalTokenDispatcher(new TokenDispatcherConfig(8, 2));
        var error = Assert.ThrowsAny<ArgumentException>(() => dispatcher.Dispatch(g.X, g.Scores, g.Ids));
        Assert.Equal("expertIds", error.ParamName);
        Assert.Contains("token 4", error.Message);
        Assert.Contains("slot 1", error.Message);
        Assert.Contains(bad.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void NonFiniteScore_NamesTokenAndSlot(float bad)
    {
        GroupInputs g = Inputs();
        g.Scores.AsSpan<float>()[2 * 2 + 0] = bad;
        var dispatcher = new LocalTokenDispatcher(new TokenDispatcherConfig(8, 2));
        var error = Assert.ThrowsAny<ArgumentException>(() => dispatcher.Dispatch(g.X, g.Scores, g.Ids));
        Assert.Equal("topScores", error.ParamName);
        Assert.Contains("token 2", error.Message);
        Assert.Contains("slot 0", error.Message);
        Assert.Contains("not finite", error.Message);
    }

    public static TheoryData<string, string> BadShapes() =>
        new()
        {
            { "x rank 1", "x" },
            { "x int64", "x" },
            { "x int32", "x" },
            { "scores wrong K", "topScores" },
            { "scores wrong T", "topScores" },
            { "scores int32", "topScores" },
            { "scores rank 1", "topScores" },
            { "ids wrong K", "expertIds" },
            { "ids wrong T", "expertIds" },
            { "ids float32", "expertIds" },
            { "ids rank 3", "expertIds" },
        };

    [Theory]
    [MemberData(nameof(BadShapes))]
    public void WrongShapesOrDTypes_NameTheArgument(string which, string param)
    {
        GroupInputs g = Inputs();
        Tensor x = g.X,
            scores = g.Scores,
            ids = g.Ids;
        switch (which)
        {
            case "x rank 1":
                x = Tensor.Zeros(DType.Float32, 18);
                break;
            case "x int64":
                x = Tensor.Zeros(DType.Int64, 6, 3);
                break;
            case "x int32":
                x = Tensor.Zeros(DType.Int32, 6, 3);
                break;
            case "scores wrong K":
                scores = Tensor.Zeros(DType.Float32, 6, 3);
                break;
            case "scores wrong T":
                scores = Tensor.Zeros(DType.Float32, 5, 2);
                break;
            case "scores int32":
                scores = Tensor.Zeros(DType.Int32, 6, 2);
                break;
            case "scores rank 1":
                scores = Tensor.Zeros(DType.Float32, 12);
                break;
            case "ids wrong K":
                ids = Tensor.Zeros(DType.Int32, 6, 1);
                break;
            case "ids wrong T":
                ids = Tensor.Zeros(DType.Int64, 7, 2);
                break;
            case "ids float32":
                ids = Tensor.Zeros(DType.Float32, 6, 2);
                break;
            case "ids rank 3":
                ids = Tensor.Zeros(DType.Int32, 6, 2, 1);
                break;
        }
        var dispatcher = new LocalTokenDispatcher(new TokenDispatcherConfig(8, 2));
        var error = Assert.ThrowsAny<ArgumentException>(() => dispatcher.Dispatch(x, scores, ids));
        Assert.Equal(param, error.ParamName);
    }

    [Fact]
    public void ExpertsNotDivisibleByEp_FailsOnEveryRank()
    {
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                4,
                world =>
                {
                    using var groups = ParallelGroups.Create(world, 1);
                    _ = new AllToAllTokenDispatcher(new TokenDispatcherConfig(6, 2), groups);
                },
                Timeout
            )
        );
        Assert.All(error.RankErrors, e => Assert.Contains("divisible", Assert.IsType<ArgumentException>(e).Message));
    }

    [Fact]
    public void TopKAboveExperts_IsRejected()
    {
        var error = Assert.Throws<ArgumentException>(() => new LocalTokenDispatcher(new TokenDispatcherConfig(4, 5)));
        Assert.Contains("K = 5", error.Message);
        Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                2,
                world =>
                {
                    using var groups = ParallelGroups.Create(world, 1);
                    _ = new AllToAllTokenDispatcher(new TokenDispatcherConfig(2, 3), groups);
                },
                Timeout
            )
        );
    }

    [Theory]
    [InlineData(4, 3)]
    [InlineData(6, 4)]
    [InlineData(2, 0)]
    [InlineData(2, -1)]
    public void SpNotDividingTheWorld_IsRejected(int world, int sp)
    {
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                world,
                g =>
                {
                    ParallelGroups.Create(g, sp).Dispose();
                },
                Timeout
            )
        );
        var inner = Assert.IsType<ArgumentException>(error.InnerException);
        Assert.Equal("spSize", inner.ParamName);
    }

    [Theory]
    [InlineData(SpShardingPolicy.PadToMultiple)]
    [InlineData(SpShardingPolicy.Balanced)]
    public void ReplicatedRanksDisagreeingOnT_EveryRankThrows(SpShardingPolicy sharding)
    {
        GroupInputs full = Inputs(tokens: 9);
        GroupInputs shorter = Slice(full, 8);
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                4,
                world =>
                {
                    using var groups = ParallelGroups.Create(world, 2);
                    var dispatcher = new AllToAllTokenDispatcher(
                        new TokenDispatcherConfig(8, 2) { Sharding = sharding },
                        groups
                    );
                    GroupInputs mine = world.Rank == 1 ? shorter : full;
                    dispatcher.Dispatch(mine.X, mine.Scores, mine.Ids);
                },
                Timeout
            )
        );
        Assert.True(clock.Elapsed < Timeout / 2, $"took {clock.Elapsed}");
        Assert.Contains("disagree", Assert.IsType<ArgumentException>(error.InnerException).Message);
        // The same check on the same data: every rank reports it, not a timeout or a peer's abort.
        Assert.All(error.RankErrors, e => Assert.Contains("disagree", Assert.IsType<ArgumentException>(e).Message));
    }

    [Fact]
    public void ShardedLayout_ShardOfTheWrongSize_WithTotalTokens_FailsThatRankAndAbortsPeers()
    {
        GroupInputs full = Inputs(tokens: 10);
        var config = new TokenDispatcherConfig(8, 2) { Layout = SequenceLayout.Sharded };
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                2,
                world =>
                {
                    using var groups = ParallelGroups.Create(world, 2);
                    var dispatcher = new AllToAllTokenDispatcher(config, groups);
                    GroupInputs mine = DispatchWorldRunner.ShardOf(full, config.Sharding, 2, groups.SpRank);
                    if (world.Rank == 1)
                        mine = Slice(mine, mine.X.Rows - 1);
                    dispatcher.Dispatch(mine.X, mine.Scores, mine.Ids, totalTokens: 10);
                },
                Timeout
            )
        );
        Assert.True(clock.Elapsed < Timeout / 2, $"took {clock.Elapsed}");
        Assert.Equal(1, error.Rank);
        var inner = Assert.IsType<ArgumentException>(error.InnerException);
        Assert.Equal("x", inner.ParamName);
        Assert.Equal(1, Assert.IsType<CollectiveException>(error.RankErrors[0]).FailedRank);
    }

    [Fact]
    public void ShardedLayout_BalancedShardsThatDoNotFit_FailOnEveryRank()
    {
        // Without totalTokens the ranks learn T from the count exchange; shards of 5 and 3 are not balanced.
        GroupInputs full = Inputs(tokens: 8);
        var config = new TokenDispatcherConfig(8, 2)
        {
            Layout = SequenceLayout.Sharded,
            Sharding = SpShardingPolicy.Balanced,
        };
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                2,
                world =>
                {
                    using var groups = ParallelGroups.Create(world, 2);
                    var dispatcher = new AllToAllTokenDispatcher(config, groups);
                    GroupInputs mine = world.Rank == 0 ? Slice(full, 5) : Slice(full, 3);
                    dispatcher.Dispatch(mine.X, mine.Scores, mine.Ids);
                },
                Timeout
            )
        );
        Assert.All(error.RankErrors, e => Assert.Contains("sharding", Assert.IsType<ArgumentException>(e).Message));
    }

    [Fact]
    public void MetadataFromAnotherDispatcher_IsRejected()
    {
        var config = new TokenDispatcherConfig(8, 2);
        GroupInputs g = Inputs();
        var first = new LocalTokenDispatcher(config);
        var second = new LocalTokenDispatcher(config);
        DispatchResult d = first.Dispatch(g.X, g.Scores, g.Ids);
        CombineResult combined = first.CombineWithState(d.RoutedTokens, d.Metadata, g.X);

        Assert.Equal(
            "metadata",
            Assert.ThrowsAny<ArgumentException>(() => second.Combine(d.RoutedTokens, d.Metadata, g.X)).ParamName
        );
        Assert.Equal(
            "metadata",
            Assert
                .ThrowsAny<ArgumentException>(() => second.DispatchBackward(d.RoutedTokens, d.Metadata, g.X))
                .ParamName
        );
        Assert.Equal(
            "metadata",
            Assert.ThrowsAny<ArgumentException>(() => second.CombineBackward(combined.Output, combined.State)).ParamName
        );
    }

    [Fact]
    public void CombineArgumentsOfTheWrongShape_AreRejected_AndLeftUnchanged()
    {
        var dispatcher = new LocalTokenDispatcher(new TokenDispatcherConfig(8, 2) { ExpertAlignment = 4 });
        GroupInputs g = Inputs();
        DispatchResult d = dispatcher.Dispatch(g.X, g.Scores, g.Ids);
        int rows = d.RoutedTokens.Rows;
        foreach (
            Tensor bad in new[]
            {
                Tensor.Zeros(DType.Float32, rows + 1, 3),
                Tensor.Zeros(DType.Float32, rows - 1, 3),
                Tensor.Zeros(DType.Float32, rows, 4),
                Tensor.Zeros(DType.Float32, rows * 3),
                d.RoutedTokens.ToBFloat16(),
            }
        )
        {
            Tensor before = bad.Clone();
            Assert.Equal(
                "routedOutput",
                Assert.ThrowsAny<ArgumentException>(() => dispatcher.Combine(bad, d.Metadata, g.X)).ParamName
            );
            Assert.True(before.BitwiseEquals(bad));
        }
        Assert.Equal(
            "x",
            Assert
                .ThrowsAny<ArgumentException>(() =>
                    dispatcher.Combine(d.RoutedTokens, d.Metadata, Tensor.Zeros(DType.Float32, 5, 3))
                )
                .ParamName
        );
        Assert.Equal(
            "gradRoutedTokens",
            Assert
                .ThrowsAny<ArgumentException>(() =>
                    dispatcher.DispatchBackward(Tensor.Zeros(DType.Float32, rows + 4, 3), d.Metadata, g.X)
                )
                .ParamName
        );
        CombineResult combined = dispatcher.CombineWithState(d.RoutedTokens, d.Metadata, g.X);
        Assert.Equal(
            "gradOutput",
            Assert
                .ThrowsAny<ArgumentException>(() =>
                    dispatcher.CombineBackward(Tensor.Zeros(DType.Float32, 6, 2), combined.State)
                )
                .ParamName
        );
    }

    [Fact]
    public void FailedCalls_LeaveCallerInputsUnchanged()
    {
        var dispatcher = new LocalTokenDispatcher(new TokenDispatcherConfig(8, 2));
        GroupInputs g = Inputs(int64: true);
        SetId(g.Ids, 11, 99); // last token, last slot: everything before it was read
        Tensor x = g.X.Clone(),
            scores = g.Scores.Clone(),
            ids = g.Ids.Clone();
        Assert.ThrowsAny<ArgumentException>(() => dispatcher.Dispatch(g.X, g.Scores, g.Ids));
        Assert.True(x.BitwiseEquals(g.X) && scores.BitwiseEquals(g.Scores) && ids.BitwiseEquals(g.Ids));

        SetId(g.Ids, 11, 1);
        g.Scores.AsSpan<float>()[11] = float.NaN;
        scores = g.Scores.Clone();
        Assert.ThrowsAny<ArgumentException>(() => dispatcher.Dispatch(g.X, g.Scores, g.Ids));
        Assert.True(x.BitwiseEquals(g.X) && scores.BitwiseEquals(g.Scores));

        // A shared-experts failure in combine leaves x and the expert outputs as they were.
        g.Scores.AsSpan<float>()[11] = 0.5f;
        DispatchResult d = dispatcher.Dispatch(g.X, g.Scores, g.Ids);
        Tensor routed = d.RoutedTokens.Clone();
        Assert.Throws<InvalidOperationException>(() =>
            dispatcher.Combine(d.RoutedTokens, d.Metadata, g.X, _ => throw new InvalidOperationException("shared"))
        );
        Assert.True(routed.BitwiseEquals(d.RoutedTokens) && x.BitwiseEquals(g.X));

        // Shared experts of the wrong shape are reported, not summed.
        var error = Assert.Throws<InvalidOperationException>(() =>
            dispatcher.Combine(d.RoutedTokens, d.Metadata, g.X, own => Tensor.Zeros(DType.Float32, own.Rows + 1, 3))
        );
        Assert.Contains("shared experts", error.Message);
    }

    [Fact]
    public void ReplicatedTotalTokensThatContradictX_IsRejected()
    {
        var dispatcher = new LocalTokenDispatcher(new TokenDispatcherConfig(8, 2));
        GroupInputs g = Inputs();
        Assert.Equal(
            "totalTokens",
            Assert.ThrowsAny<ArgumentException>(() => dispatcher.Dispatch(g.X, g.Scores, g.Ids, 7)).ParamName
        );
        Assert.Equal(
            "totalTokens",
            Assert.ThrowsAny<ArgumentException>(() => dispatcher.Dispatch(g.X, g.Scores, g.Ids, -1)).ParamName
        );
    }

    private static GroupInputs Slice(GroupInputs g, int rows)
    {
        Tensor Rows(Tensor t)
        {
            int[] shape = t.ShapeArray();
            shape[0] = rows;
            var slice = Tensor.Uninitialized(t.DType, shape);
            t.AsBytes()[..(int)slice.ByteCount].CopyTo(slice.AsBytes());
            return slice;
        }
        return new GroupInputs(Rows(g.X), Rows(g.Scores), Rows(g.Ids));
    }
}
