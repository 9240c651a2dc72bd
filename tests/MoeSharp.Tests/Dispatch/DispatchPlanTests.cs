using CsCheck;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// The dispatch plan is arithmetic on the counts alone: checked here without ranks, process groups or kernels, against
/// hand-worked examples and against the invariants the dispatcher relies on (every row placed once, expert-major order,
/// padding only at the end of each expert's run).
/// </summary>
public class DispatchPlanTests
{
    private static readonly RowFormat Rows = new(Dim: 4, DType.Float32, OnHost: true);

    private static SequenceShard Whole(int tokens) => new(tokens, 0, tokens, 0);

    [Fact]
    public void LocalPlan_WithoutAlignment_IsTheIdentity()
    {
        var config = new TokenDispatcherConfig(numExperts: 3, topK: 2);
        DispatchPlan plan = DispatchPlan.Create(
            config,
            epSize: 1,
            epRank: 0,
            rowsMove: false,
            Whole(4),
            [3, 0, 5],
            [3, 0, 5],
            Rows
        );

        Assert.Equal([8], plan.InputSplits.ToArray());
        Assert.Equal([8], plan.OutputSplits.ToArray());
        Assert.Equal([3, 0, 5], plan.TokensPerLocalExpert.ToArray());
        Assert.Equal(8, plan.SentRows);
        Assert.Equal(8, plan.LocalRows);
        Assert.Equal(8, plan.RoutedRows);
        Assert.True(plan.RowOfSorted.IsDefault);
        Assert.False(plan.NeedsPermutation);
    }

    [Fact]
    public void LocalPlan_WithAlignment_PadsEachExpertsRunInPlace()
    {
        var config = new TokenDispatcherConfig(numExperts: 3, topK: 2) { ExpertAlignment = 4 };
        DispatchPlan plan = DispatchPlan.Create(config, 1, 0, rowsMove: false, Whole(4), [3, 0, 5], [3, 0, 5], Rows);

        // Expert 0: rows 0-2 (+1 pad); expert 1: none; expert 2: rows 4-8 (+3 pad).
        Assert.Equal([0, 1, 2, 4, 5, 6, 7, 8], plan.RowOfSorted.ToArray());
        Assert.Equal(12, plan.LocalRows);
        Assert.Equal([4, 0, 8], plan.TokensPerLocalExpert.ToArray());
        Assert.Equal(12, plan.RoutedRows);
        Assert.False(plan.NeedsPermutation);
    }

    [Fact]
    public void LocalPlan_WithExpertCapacity_PutsEachExpertsRowsInItsBlock()
    {
        var config = new TokenDispatcherConfig(numExperts: 3, topK: 2) { ExpertAlignment = 4 };
        DispatchPlan plan = DispatchPlan
            .Create(config, 1, 0, rowsMove: false, Whole(4), [3, 0, 5], [3, 0, 5], Rows)
            .WithExpertCapacity(8);

        // Blocks of 8: expert 0 rows 0-2, expert 1 none, expert 2 rows 16-20; the rest of each block is padding.
        Assert.Equal([0, 1, 2, 16, 17, 18, 19, 20], plan.RowOfSorted.ToArray());
        Assert.Equal(24, plan.LocalRows);
        Assert.Equal(24, plan.RoutedRows);
        Assert.Equal([4, 0, 8], plan.TokensPerLocalExpert.ToArray());
        Assert.Equal(8, plan.SentRows);
        Assert.False(plan.NeedsPermutation);
    }

    [Fact]
    public void ExpertCapacity_BelowAnExpertsRows_OrWithRowsThatMove_IsRefused()
    {
        var config = new TokenDispatcherConfig(numExperts: 3, topK: 2) { ExpertAlignment = 4 };
        DispatchPlan local = DispatchPlan.Create(config, 1, 0, rowsMove: false, Whole(4), [3, 0, 5], [3, 0, 5], Rows);
        // Expert 2's 5 rows are 8 with the alignment padding.
        Assert.Throws<InvalidOperationException>(() => local.WithExpertCapacity(6));
        var two = new TokenDispatcherConfig(numExperts: 4, topK: 2);
        DispatchPlan moving = DispatchPlan.Create(
            two,
            2,
            1,
            rowsMove: true,
            Whole(3),
            [1, 2, 3, 0],
            [2, 1, 3, 0],
            Rows
        );
        Assert.Throws<InvalidOperationException>(() => moving.WithExpertCapacity(8));
    }

    [Fact]
    public void ExchangePlan_SplitsAndBlocks_AreWorkedOutByHand()
    {
        // S = 2 ranks, E = 4 experts, e = 2 local experts; this is rank 1 (experts 2 and 3).
        var config = new TokenDispatcherConfig(numExperts: 4, topK: 2) { ExpertAlignment = 2 };
        int[] mine = [1, 2, 3, 0]; // this rank's entries per expert
        int[] received = [2, 1, 3, 0]; // rank 0 sends 2 for expert 2 and 1 for expert 3; rank 1 (itself) 3 and 0
        DispatchPlan plan = DispatchPlan.Create(
            config,
            epSize: 2,
            epRank: 1,
            rowsMove: true,
            Whole(3),
            mine,
            received,
            Rows
        );

        Assert.Equal([3, 3], plan.InputSplits.ToArray());
        Assert.Equal([3, 3], plan.OutputSplits.ToArray());
        Assert.Equal(6, plan.SentRows);
        Assert.Equal(6, plan.LocalRows);
        Assert.True(plan.RowOfSorted.IsDefault, "the sender does not pad: the receiver pads while permuting");
        Assert.Equal(6, plan.RowsReceived);
        // Expert 2: 2 + 3 = 5 rows, padded to 6; expert 3: 1 row, padded to 2.
        Assert.Equal([6, 2], plan.TokensPerLocalExpert.ToArray());
        Assert.Equal(8, plan.RoutedRows);
        Assert.True(plan.NeedsPermutation);
        // Received rank-major: [r0e2 r0e2 | r0e3 | r1e2 r1e2 r1e2 | (r1e3: none)].
        Assert.Equal([0, 2, 3, 6, 6], plan.BlockStart.ToArray());
        // Expert-major: expert 2 from rank 0 at 0, from rank 1 at 2; expert 3 from rank 0 at 6, from rank 1 at 7.
        Assert.Equal([0, 6, 2, 7], plan.BlockDestination.ToArray());
    }

    [Fact]
    public void OneLocalExpert_WithoutPadding_NeedsNoPermutation()
    {
        var config = new TokenDispatcherConfig(numExperts: 2, topK: 1);
        DispatchPlan plan = DispatchPlan.Create(
            config,
            epSize: 2,
            epRank: 0,
            rowsMove: true,
            Whole(4),
            [3, 1],
            [3, 2],
            Rows
        );
        Assert.False(plan.NeedsPermutation);
        Assert.Equal([3, 1], plan.InputSplits.ToArray());
        Assert.Equal([3, 2], plan.OutputSplits.ToArray());
        Assert.Equal(5, plan.RoutedRows);
    }

    [Fact]
    public void InputRowOffset_IsTheShardStart_InTheReplicatedLayoutOnly()
    {
        var shard = new SequenceShard(TotalTokens: 10, Start: 5, RealRows: 5, PadRows: 0);
        var replicated = new TokenDispatcherConfig(2, 1);
        var sharded = replicated with { Layout = SequenceLayout.Sharded };
        Assert.Equal(5, DispatchPlan.Create(replicated, 1, 0, false, shard, [3, 2], [3, 2], Rows).InputRowOffset);
        Assert.Equal(0, DispatchPlan.Create(sharded, 1, 0, false, shard, [3, 2], [3, 2], Rows).InputRowOffset);
    }

    [Fact]
    public void CountsOfTheWrongLength_AreRejected()
    {
        var config = new TokenDispatcherConfig(4, 1);
        Assert.Throws<ArgumentException>(() =>
            DispatchPlan.Create(config, 2, 0, true, Whole(1), [1, 0, 0], [1, 0, 0, 0], Rows)
        );
        Assert.Throws<ArgumentException>(() =>
            DispatchPlan.Create(config, 2, 0, true, Whole(1), [1, 0, 0, 0], [1, 0, 0], Rows)
        );
    }

    [Fact]
    public void RoutedRowsBeyondATensor_AreRefusedBeforeAllocation()
    {
        var config = new TokenDispatcherConfig(2, 1) { ExpertAlignment = 1 << 30 };
        Assert.ThrowsAny<Exception>(() => DispatchPlan.Create(config, 1, 0, false, Whole(2), [1, 1], [1, 1], Rows));
    }

    /// <summary>
    /// For any counts: the permutation blocks tile the received rows in rank-major order, place them expert-major with
    /// sources in order, never overlap, and leave exactly each expert's alignment padding uncovered at the end of its
    /// run.
    /// </summary>
    [Fact]
    public void PermutationBlocks_PlaceEveryReceivedRowOnce_ExpertMajor()
    {
        Gen.Select(Gen.Int[1, 4], Gen.Int[1, 3], Gen.Int[1, 4], Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (s, e, alignment, seed) =>
                {
                    var random = new Random(seed);
                    int experts = s * e;
                    int[] received = Enumerable.Range(0, s * e).Select(_ => random.Next(4)).ToArray();
                    int[] mine = Enumerable.Range(0, experts).Select(_ => random.Next(4)).ToArray();
                    var config = new TokenDispatcherConfig(experts, 1) { ExpertAlignment = alignment };
                    DispatchPlan plan = DispatchPlan.Create(
                        config,
                        s,
                        0,
                        rowsMove: true,
                        Whole(mine.Sum()),
                        mine,
                        received,
                        Rows
                    );

                    Assert.Equal(received.Sum(), plan.RowsReceived);
                    Assert.Equal(plan.TokensPerLocalExpert.Sum(), plan.RoutedRows);
                    for (int j = 0; j < e; j++)
                    {
                        int rows = Enumerable.Range(0, s).Sum(p => received[p * e + j]);
                        Assert.Equal((rows + alignment - 1) / alignment * alignment, plan.TokensPerLocalExpert[j]);
                    }
                    if (!plan.NeedsPermutation)
                    {
                        Assert.True(e == 1 && plan.RoutedRows == plan.RowsReceived);
                        return;
                    }
                    var sourceOf = Enumerable.Repeat(-1, plan.RoutedRows).ToArray();
                    int expertStart = 0;
                    for (int j = 0; j < e; j++)
                    {
                        int next = expertStart;
                        for (int p = 0; p < s; p++)
                        {
                            int b = p * e + j;
                            Assert.Equal(next, plan.BlockDestination[b]);
                            for (int r = plan.BlockStart[b]; r < plan.BlockStart[b + 1]; r++)
                            {
                                Assert.Equal(-1, sourceOf[next]);
                                sourceOf[next++] = r;
                            }
                        }
                        // What follows the expert's received rows up to its padded end is padding, uncovered.
                        for (int q = next; q < expertStart + plan.TokensPerLocalExpert[j]; q++)
                            Assert.Equal(-1, sourceOf[q]);
                        expertStart += plan.TokensPerLocalExpert[j];
                    }
                    Assert.Equal(plan.RowsReceived, plan.BlockStart[^1]);
                    Assert.Equal(Enumerable.Range(0, plan.RowsReceived), sourceOf.Where(r => r >= 0).Order());
                },
                iter: 300
            );
    }

    /// <summary>
    /// Without an exchange each expert's run is padded in place: sorted positions keep their order, each run starts at
    /// the padded end of the previous one, and the local rows are the routed rows.
    /// </summary>
    [Fact]
    public void RowOfSorted_KeepsOrder_AndStartsEachRunAligned()
    {
        Gen.Select(Gen.Int[1, 6], Gen.Int[2, 5], Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (experts, alignment, seed) =>
                {
                    var random = new Random(seed);
                    int[] counts = Enumerable.Range(0, experts).Select(_ => random.Next(6)).ToArray();
                    var config = new TokenDispatcherConfig(experts, 1) { ExpertAlignment = alignment };
                    DispatchPlan plan = DispatchPlan.Create(
                        config,
                        1,
                        0,
                        rowsMove: false,
                        Whole(counts.Sum()),
                        counts,
                        counts,
                        Rows
                    );

                    Assert.Equal(counts.Sum(), plan.RowOfSorted.Length);
                    Assert.Equal(plan.RoutedRows, plan.LocalRows);
                    int position = 0,
                        runStart = 0;
                    for (int x = 0; x < experts; x++)
                    {
                        Assert.Equal(0, runStart % alignment);
                        for (int r = 0; r < counts[x]; r++)
                            Assert.Equal(runStart + r, plan.RowOfSorted[position++]);
                        runStart += plan.TokensPerLocalExpert[x];
                    }
                    Assert.Equal(plan.LocalRows, runStart);
                },
                iter: 200
            );
    }
}
