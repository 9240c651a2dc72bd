using CsCheck;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Testing;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// Capacity mode (<see cref="DispatchCapacity"/>) against the normal mode, bitwise: every golden file under a bound
/// that fits, one that overflows everywhere and a factor; adversarial routing (everything to one expert, one rank
/// receiving everything) with the overflow round counted; random problems under random bounds; the backward passes.
/// </summary>
public class CapacityModeTests
{
    public static TheoryData<string> DispatchFiles() => GoldenDispatchTests.DispatchFiles();

    [Theory]
    [MemberData(nameof(DispatchFiles))]
    public void GoldenFile_CapacityMode_IsBitwiseTheNormalMode(string fileName)
    {
        SafetensorsContent file = SafetensorsFile.Read(GoldenFiles.PathOf(fileName));
        DispatchCase problem = GoldenDispatchReplay.ReadCase(file);
        int tokens = problem.Groups[0].X.Rows;
        foreach (DispatchCapacity capacity in Capacities(problem.World))
        {
            CapacityOutcome[] outcomes = CapacityComparison.CompareInProcess(
                problem,
                capacity,
                DispatchHarness.Timeout
            );
            foreach (CapacityOutcome outcome in outcomes)
                Assert.True(outcome.Mismatch is null, $"{fileName}, {capacity}: {outcome.Mismatch}");
            // One row per rank cannot hold a step with more entries than ranks: the overflow round must have run.
            if (capacity.FixedRowsPerRank == 1 && problem.World > 1 && tokens * problem.Config.TopK > problem.World)
                Assert.All(outcomes, o => Assert.Equal(1, o.OverflowRounds));
            // A factor of S holds every routing: no overflow round.
            if (capacity.CapacityFactor == problem.World)
                Assert.All(outcomes, o => Assert.Equal(0, o.OverflowRounds));
        }
    }

    [Theory]
    [InlineData(SpShardingPolicy.Balanced, SequenceLayout.Replicated)]
    [InlineData(SpShardingPolicy.Balanced, SequenceLayout.Sharded)]
    [InlineData(SpShardingPolicy.PadToMultiple, SequenceLayout.Sharded)]
    public void AFactor_UnderUnevenShards_AgreesOnC_AndStaysBitwise(SpShardingPolicy sharding, SequenceLayout layout)
    {
        // T = 7 over SP 4: balanced shards of 2, 2, 2, 1 tokens; C comes from the largest, so every rank agrees.
        DispatchCase seed = GoldenDispatchReplay.ReadCase(
            SafetensorsFile.Read(GoldenFiles.PathOf("seed_pr_t7_sp4.safetensors"))
        );
        DispatchCase problem = seed with { Config = seed.Config with { Sharding = sharding, Layout = layout } };
        AssertBitwise(
            CapacityComparison.CompareInProcess(problem, DispatchCapacity.Factor(1), DispatchHarness.Timeout)
        );
    }

    [Fact]
    public void SpRanksThatDisagreeOnT_ThrowOnEveryRank_AsInTheNormalMode()
    {
        // SP = 2, replicated layout: rank 0 holds 6 tokens, rank 1 holds 8; a fixed bound, so C agrees.
        GroupInputs six = Adversarial(1, 1, tokens: 6, experts: 4, topK: 1, firstExpert: 0).Groups[0];
        GroupInputs eight = Adversarial(1, 1, tokens: 8, experts: 4, topK: 1, firstExpert: 0).Groups[0];
        var config = new TokenDispatcherConfig(4, 1) { Capacity = DispatchCapacity.RowsPerRank(64) };
        var error = Assert.ThrowsAny<Exception>(() =>
            MoeSharp.Collectives.InProcessWorld.Run(
                2,
                world =>
                {
                    using var groups = ParallelGroups.Create(world, 2);
                    GroupInputs g = world.Rank == 0 ? six : eight;
                    using DispatchResult d = new AllToAllTokenDispatcher(config, groups).Dispatch(g.X, g.Scores, g.Ids);
                    return 0;
                },
                DispatchHarness.Timeout
            )
        );
        Assert.Contains("disagree on the token count T", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AFactor_WithGroupsOfDifferentT_IsOneErrorOnEveryRank()
    {
        DispatchCase a = Adversarial(2, 1, tokens: 5, experts: 4, topK: 1, firstExpert: 0);
        DispatchCase b = Adversarial(2, 1, tokens: 9, experts: 4, topK: 1, firstExpert: 0);
        DispatchCase problem = a with { Groups = [a.Groups[0], b.Groups[1]] };
        var error = Assert.ThrowsAny<Exception>(() =>
            CapacityComparison.CompareInProcess(problem, DispatchCapacity.Factor(1), DispatchHarness.Timeout)
        );
        Assert.Contains("different capacities", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(4, 1)]
    [InlineData(4, 2)]
    public void EveryTokenToOneExpert_OverflowsAndStaysBitwise(int world, int sp)
    {
        // K = 1, every token to expert 0: rank 0 receives every row of every rank.
        DispatchCase problem = Adversarial(world, sp, tokens: 37, experts: 2 * world, topK: 1, firstExpert: 0);
        CapacityOutcome[] outcomes = CapacityComparison.CompareInProcess(
            problem,
            DispatchCapacity.Factor(1.0),
            DispatchHarness.Timeout
        );
        AssertBitwise(outcomes);
        Assert.All(outcomes, o => Assert.Equal(world > 1 ? 1 : 0, o.OverflowRounds));
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(4, 1)]
    [InlineData(4, 4)]
    public void OneRankReceivingEverything_WithAlignment_OverflowsAndStaysBitwise(int world, int sp)
    {
        // K = 2, every token to the last rank's two experts; alignment pads the receiver's runs.
        DispatchCase problem = Adversarial(
            world,
            sp,
            tokens: 50,
            experts: 2 * world,
            topK: 2,
            firstExpert: 2 * world - 2
        );
        problem = problem with { Config = problem.Config with { ExpertAlignment = 8 } };
        CapacityOutcome[] outcomes = CapacityComparison.CompareInProcess(
            problem,
            DispatchCapacity.Factor(1.25),
            DispatchHarness.Timeout
        );
        AssertBitwise(outcomes);
        Assert.All(outcomes, o => Assert.Equal(1, o.OverflowRounds));
    }

    [Fact]
    public void AFactorOfTheEpSize_NeverOverflows_EvenWhenOneRankReceivesEverything()
    {
        DispatchCase problem = Adversarial(4, 1, tokens: 29, experts: 8, topK: 2, firstExpert: 6);
        CapacityOutcome[] outcomes = CapacityComparison.CompareInProcess(
            problem,
            DispatchCapacity.Factor(4),
            DispatchHarness.Timeout
        );
        AssertBitwise(outcomes);
        Assert.All(outcomes, o => Assert.Equal(0, o.OverflowRounds));
    }

    [Fact]
    public void RandomProblems_UnderRandomBounds_AreBitwiseTheNormalMode()
    {
        // Groups may differ in T here, so the bound is a fixed row count (a factor would give ranks different C).
        (from p in DispatchGen.Problems(maxWorld: 4) from rows in Gen.Int[1, 64] select (p, rows)).Sample(
            c =>
            {
                (DispatchProblem p, int rows) = c;
                var problem = new DispatchCase(p.World, p.Sp, p.Config, p.Inputs());
                CapacityOutcome[] outcomes = CapacityComparison.CompareInProcess(
                    problem,
                    DispatchCapacity.RowsPerRank(rows),
                    DispatchHarness.Timeout
                );
                foreach (CapacityOutcome outcome in outcomes)
                    Assert.True(outcome.Mismatch is null, $"{p}, {rows} rows per rank: {outcome.Mismatch}");
                Assert.Single(outcomes.Select(o => o.OverflowRounds).Distinct());
            },
            iter: 40,
            threads: 1
        );
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BackwardPasses_ThroughTheOverflowRound_AreBitwiseTheNormalMode(bool scoreBefore)
    {
        DispatchCase problem = Adversarial(2, 1, tokens: 23, experts: 4, topK: 2, firstExpert: 2);
        var config = problem.Config with { ScoreBeforeExperts = scoreBefore };
        string?[] mismatches = MoeSharp.Collectives.InProcessWorld.Run(
            2,
            world =>
            {
                using var groups = ParallelGroups.Create(world, 1);
                GroupInputs g = problem.Groups[world.Rank];
                Tensor[] normal = Backward(new AllToAllTokenDispatcher(config, groups), g);
                var capacity = new AllToAllTokenDispatcher(
                    config with
                    {
                        Capacity = DispatchCapacity.Factor(1),
                    },
                    groups
                );
                Tensor[] bounded = Backward(capacity, g);
                Assert.Equal(1, capacity.OverflowRounds);
                string[] names = ["combine output", "grad x", "grad scores (combine)", "grad scores (dispatch)"];
                return names
                    .Select(
                        (name, i) => DispatchHarness.BitwiseMismatch($"rank {world.Rank} {name}", normal[i], bounded[i])
                    )
                    .FirstOrDefault(m => m is not null);
            },
            DispatchHarness.Timeout
        );
        Assert.All(mismatches, Assert.Null);
    }

    /// <summary>
    /// Dispatch, the routed rows doubled as the experts, combine, then both backward passes with the output gradient
    /// x: the combine output, grad x, and the score gradients of combine and dispatch (zeros where a pass has none).
    /// </summary>
    private static Tensor[] Backward(TokenDispatcher dispatcher, GroupInputs g)
    {
        DispatchResult dispatched = dispatcher.Dispatch(g.X, g.Scores, g.Ids);
        Tensor expertOutput = dispatched.RoutedTokens.ToHost();
        foreach (ref float v in expertOutput.AsSpan<float>())
            v *= 2f;
        CombineResult combined = dispatcher.CombineWithState(expertOutput, dispatched.Metadata, g.X);
        CombineBackwardResult back = dispatcher.CombineBackward(g.X, combined.State);
        DispatchBackwardResult dx = dispatcher.DispatchBackward(back.GradRoutedOutput, dispatched.Metadata, g.X);
        Tensor none = Tensor.Zeros(DType.Float32, g.Scores.ShapeArray());
        return [combined.Output, dx.GradX, back.GradTopScores ?? none, dx.GradTopScores ?? none];
    }

    [Fact]
    public void TheDispatcher_CountsItsOverflowRounds()
    {
        DispatchCase problem = Adversarial(1, 1, tokens: 12, experts: 4, topK: 1, firstExpert: 3);
        var config = problem.Config with { Capacity = DispatchCapacity.RowsPerRank(1) };
        var dispatcher = new LocalTokenDispatcher(config);
        GroupInputs g = problem.Groups[0];
        using (DispatchResult result = dispatcher.Dispatch(g.X, g.Scores, g.Ids))
        {
            // EP = 1: no row leaves the rank, so nothing can overflow whatever the bound.
            Assert.Equal(0, result.OverflowRounds);
            Assert.Empty(result.TokensPerLocalExpert);
            Assert.Equal([0, 0, 0, 12], result.DeviceTokensPerLocalExpert!.AsSpan<int>().ToArray());
        }
        Assert.Equal(0, dispatcher.OverflowRounds);

        long[] counted = MoeSharp.Collectives.InProcessWorld.Run(
            2,
            world =>
            {
                using var groups = ParallelGroups.Create(world, 1);
                var ep2 = new AllToAllTokenDispatcher(config, groups);
                for (int step = 0; step < 3; step++)
                {
                    using DispatchResult d = ep2.Dispatch(g.X, g.Scores, g.Ids);
                }
                return ep2.OverflowRounds;
            },
            DispatchHarness.Timeout
        );
        Assert.Equal([3L, 3L], counted);
    }

    [Fact]
    public void InvalidEntry_Throws_AsInTheNormalMode()
    {
        DispatchCase problem = Adversarial(1, 1, tokens: 4, experts: 4, topK: 1, firstExpert: 1);
        GroupInputs g = problem.Groups[0];
        g.Ids.AsSpan<long>()[2] = 9;
        var dispatcher = new LocalTokenDispatcher(problem.Config with { Capacity = DispatchCapacity.Factor(1) });
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => dispatcher.Dispatch(g.X, g.Scores, g.Ids));
        Assert.Contains("expertIds[token 2, slot 0] = 9", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CapacityWithTrafficCollection_IsRejected()
    {
        var config = new TokenDispatcherConfig(4, 1) { Capacity = DispatchCapacity.Factor(1), CollectTraffic = true };
        var error = Assert.Throws<ArgumentException>(() => new LocalTokenDispatcher(config));
        Assert.Contains("CollectTraffic", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void BadFactor_IsRejected(double factor) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => DispatchCapacity.Factor(factor));

    /// <summary>A bound that fits balanced routing, one that overflows whenever rows move, and one that always
    /// fits.</summary>
    private static DispatchCapacity[] Capacities(int world) =>
        [DispatchCapacity.Factor(1.0), DispatchCapacity.RowsPerRank(1), DispatchCapacity.Factor(world)];

    private static void AssertBitwise(CapacityOutcome[] outcomes)
    {
        foreach (CapacityOutcome outcome in outcomes)
            Assert.True(outcome.Mismatch is null, outcome.Mismatch);
    }

    private static DispatchCase Adversarial(int world, int sp, int tokens, int experts, int topK, int firstExpert) =>
        AdversarialRouting.Case(world, sp, tokens, 24, experts, topK, firstExpert);
}
