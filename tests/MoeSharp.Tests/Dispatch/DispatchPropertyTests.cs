using CsCheck;
using MoeSharp.Dispatch;
using MoeSharp.Experts;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// DESIGN.md §1 invariants over random worlds (≤ 8 ranks), SP sizes, T (0 to ~300, often below SP), D, E,
/// K, score modes, sharding policies, layouts, alignments and id dtypes.
/// </summary>
public class DispatchPropertyTests
{
    private const int Iterations = 80;

    [Fact]
    public void FinalOutput_IsBitwiseTheSingleRankRun_AndTheDenseDefinition()
    {
        DispatchGen
            .Problems()
            .Sample(
                p =>
                {
                    GroupInputs[] inputs = p.Inputs();
                    var problem = new DispatchCase(p.World, p.Sp, p.Config, inputs);
                    RankOutcome[] outcomes = DispatchWorldRunner.RunInProcess(problem, DispatchHarness.Timeout);
                    Tensor[] finals = DispatchWorldRunner.GroupFinals(problem, outcomes);
                    for (int g = 0; g < p.GroupCount; g++)
                    {
                        // (a) bitwise equal to the single-rank run.
                        Tensor reference = DispatchWorldRunner.RunReference(p.Config, inputs[g]);
                        Assert.Null(DispatchHarness.BitwiseMismatch($"{p}: final.g{g}", reference, finals[g]));

                        // (b) the dense definition in float64, the error against the size of the terms summed
                        // (scores of either sign can leave a sum far smaller than the rounding of its terms).
                        double error = NaiveDispatch.ScaledError(
                            NaiveDispatch.DenseScaled64(inputs[g]),
                            finals[g].AsSpan<float>(),
                            NaiveDispatch.DenseScaled64Magnitude(inputs[g])
                        );
                        Assert.True(
                            error < 1e-5,
                            $"{p}: group {g} error {error} of the terms' size against the float64 dense definition"
                        );
                    }
                },
                iter: Iterations,
                threads: 1
            );
    }

    [Fact]
    public void PadRows_NeverReachTheOutput_AndExistOnlyWhereTheyMust()
    {
        // The affine expert maps a zero row to a nonzero one, so a pad row (SP or alignment) that leaked into
        // a token's sum would change its bits.
        DispatchGen
            .Problems()
            .Sample(
                p =>
                {
                    GroupInputs[] inputs = p.Inputs();
                    var ranks = DispatchHarness.Run(
                        p,
                        inputs,
                        c =>
                        {
                            DispatchResult d = c.Dispatch();
                            Tensor y = DispatchHarness.ApplyExperts(
                                d.RoutedTokens,
                                d.TokensPerLocalExpert,
                                c.Rank * p.LocalExperts,
                                NaiveDispatch.Affine
                            );
                            Tensor output = c.Dispatcher.Combine(y, d.Metadata, c.Mine.X);
                            return (
                                d.Metadata.Shard,
                                Output: output,
                                Final: c.Dispatcher.ReduceSequenceParallel(output)
                            );
                        }
                    );

                    for (int r = 0; r < p.World; r++)
                    {
                        int g = r / p.Sp,
                            s = r % p.Sp,
                            tokens = inputs[g].X.Rows;
                        SequenceShard shard = ranks[r].Shard;
                        var (start, real, pad) = NaiveDispatch.Shard(p.Sharding, tokens, p.Sp, s);
                        Assert.True(
                            shard == new SequenceShard(tokens, start, real, pad),
                            $"{p}: rank {r} shard {shard}, expected start {start} real {real} pad {pad}"
                        );
                        if (p.Sharding == SpShardingPolicy.Balanced || p.Sp == 1 || tokens % p.Sp == 0)
                        {
                            Assert.True(shard.PadRows == 0, $"{p}: rank {r} has {shard.PadRows} pad rows");
                        }
                        if (p.Layout == SequenceLayout.Replicated)
                        {
                            // Rows outside the shard stay zero before the SP reduce.
                            ReadOnlySpan<float> o = ranks[r].Output.AsSpan<float>();
                            int d = p.Dim;
                            for (int i = 0; i < o.Length; i++)
                            {
                                int t = i / d;
                                if ((t < start || t >= start + real) && BitConverter.SingleToInt32Bits(o[i]) != 0)
                                {
                                    Assert.Fail(
                                        $"{p}: rank {r} output row {t} is outside its shard [{start}, {start + real}) but holds {o[i]}"
                                    );
                                }
                            }
                        }
                    }
                    if (p.Sharding == SpShardingPolicy.PadToMultiple)
                    {
                        for (int g = 0; g < p.GroupCount; g++)
                        {
                            int tokens = inputs[g].X.Rows,
                                padded = (tokens + p.Sp - 1) / p.Sp * p.Sp;
                            Assert.Equal(
                                padded - tokens,
                                Enumerable.Range(g * p.Sp, p.Sp).Sum(r => ranks[r].Shard.PadRows)
                            );
                        }
                    }

                    Tensor[] finals = DispatchHarness.Finals(p, inputs, ranks.Select(x => x.Final).ToArray());
                    for (int g = 0; g < p.GroupCount; g++)
                    {
                        Tensor expected = NaiveDispatch.Final32(inputs[g], p.ScoreBefore, NaiveDispatch.Affine);
                        Assert.Null(DispatchHarness.BitwiseMismatch($"{p}: final.g{g}", expected, finals[g]));
                    }
                },
                iter: Iterations,
                threads: 1
            );
    }

    [Fact]
    public void EveryRoutedEntry_IsReceivedOnce_ExpertMajorThenSourceRank()
    {
        DispatchGen
            .Problems()
            .Sample(
                p =>
                {
                    // Tagged rows: every element of token t of group g is Tag(g, t) (> 0); pad rows are zero. Scores of
                    // 1 keep the tags exact when they multiply before the experts.
                    GroupInputs[] inputs = p.Inputs().Select((g, index) => Tagged(g, index)).ToArray();
                    var ranks = DispatchHarness.Run(
                        p,
                        inputs,
                        c =>
                        {
                            DispatchResult d = c.Dispatch();
                            // Complete the round trip so every rank finishes the same collectives.
                            c.Dispatcher.Combine(d.RoutedTokens, d.Metadata, c.Mine.X);
                            return d;
                        }
                    );

                    // Each rank's expert-sorted entries: (expert, tag), real entries in (token, slot) order, then its
                    // SP pads.
                    var sent = new List<(int Expert, float Tag)>[p.World];
                    for (int r = 0; r < p.World; r++)
                    {
                        int g = r / p.Sp;
                        GroupInputs full = inputs[g];
                        var (start, real, pad) = NaiveDispatch.Shard(p.Sharding, full.X.Rows, p.Sp, r % p.Sp);
                        var entries = new List<(int Expert, float Tag)>();
                        for (int t = start; t < start + real; t++)
                        {
                            for (int k = 0; k < p.TopK; k++)
                                entries.Add((DispatchInputs.Id(full.Ids, t * p.TopK + k), DispatchInputs.Tag(g, t)));
                        }
                        for (int i = 0; i < pad * p.TopK; i++)
                            entries.Add((0, 0f));
                        sent[r] = entries.OrderBy(x => x.Expert).ToList(); // LINQ OrderBy is stable.
                        Assert.Equal(entries.Count, ranks[r].Metadata.RowsSent);
                    }

                    var received = new List<(int Expert, float Tag)>();
                    for (int q = 0; q < p.World; q++)
                    {
                        DispatchResult d = ranks[q];
                        Assert.Equal(p.LocalExperts, d.TokensPerLocalExpert.Length);
                        Assert.True(d.TokensPerLocalExpert.SequenceEqual(d.Metadata.TokensPerLocalExpert));
                        // (e) rows per local expert sum to the routed rows.
                        Assert.Equal(d.RoutedTokens.Rows, d.TokensPerLocalExpert.Sum());
                        Assert.Equal(d.RoutedTokens.Rows, d.Metadata.RoutedRows);
                        Assert.Equal(p.Dim, d.RoutedTokens.RowLength);

                        ReadOnlySpan<float> routed = d.RoutedTokens.AsSpan<float>();
                        int row = 0;
                        for (int j = 0; j < p.LocalExperts; j++)
                        {
                            int expert = q * p.LocalExperts + j;
                            // Expected block: for each source rank in order, its entries for this expert.
                            var expected = new List<float>();
                            for (int src = 0; src < p.World; src++)
                                expected.AddRange(sent[src].Where(x => x.Expert == expert).Select(x => x.Tag));
                            int block = d.TokensPerLocalExpert[j];
                            Assert.True(
                                block % p.Align == 0,
                                $"{p}: rank {q} expert {expert} has {block} rows, not a multiple of {p.Align}"
                            );
                            Assert.True(
                                block == (expected.Count + p.Align - 1) / p.Align * p.Align,
                                $"{p}: rank {q} expert {expert} has {block} rows for {expected.Count} entries at alignment {p.Align}"
                            );
                            for (int i = 0; i < block; i++, row++)
                            {
                                float want = i < expected.Count ? expected[i] : 0f; // alignment pad rows are zero
                                for (int c = 0; c < p.Dim; c++)
                                {
                                    float got = routed[row * p.Dim + c];
                                    if (BitConverter.SingleToInt32Bits(got) != BitConverter.SingleToInt32Bits(want))
                                    {
                                        Assert.Fail(
                                            $"{p}: rank {q} expert {expert} row {i} (routed row {row}) column {c}: expected {want}, got {got}"
                                        );
                                    }
                                }
                                if (i < expected.Count)
                                    received.Add((expert, routed[row * p.Dim]));
                            }
                        }
                        Assert.Equal(d.RoutedTokens.Rows, row);
                    }

                    // (d) the multiset of received (tag, expert) pairs is the routed entries, each once; pad entries
                    // (tag 0) go to expert 0 and exist only under pad-to-multiple.
                    var all = sent.SelectMany(x => x).OrderBy(x => x.Expert).ThenBy(x => x.Tag).ToList();
                    Assert.Equal(all, received.OrderBy(x => x.Expert).ThenBy(x => x.Tag).ToList());
                    Assert.All(received.Where(x => x.Tag == 0f), x => Assert.Equal(0, x.Expert));
                    if (p.Sharding == SpShardingPolicy.Balanced)
                        Assert.DoesNotContain(received, x => x.Tag == 0f);
                },
                iter: Iterations,
                threads: 1
            );
    }

    [Fact]
    public void Splits_AndCounts_AreConsistentAcrossRanks()
    {
        DispatchGen
            .Problems()
            .Sample(
                p =>
                {
                    GroupInputs[] inputs = p.Inputs();
                    var ranks = DispatchHarness.Run(
                        p,
                        inputs,
                        c =>
                        {
                            DispatchResult d = c.Dispatch();
                            Tensor output = c.Dispatcher.Combine(
                                ScaledIdentityExperts.Apply(
                                    d.RoutedTokens,
                                    d.TokensPerLocalExpert.AsSpan(),
                                    c.Rank * p.LocalExperts
                                ),
                                d.Metadata,
                                c.Mine.X
                            );
                            Assert.Equal(c.Mine.X.Rows, output.Rows);
                            return d.Metadata;
                        }
                    );
                    for (int p1 = 0; p1 < p.World; p1++)
                    {
                        DispatchMetadata m = ranks[p1];
                        Assert.Equal(p.Experts, m.ExpertCounts.Length);
                        Assert.Equal(m.RowsSent, m.ExpertCounts.Sum());
                        Assert.Equal(m.RowsSent, m.Shard.Rows * p.TopK);
                        for (int q = 0; q < p.World; q++)
                        {
                            // What p1 sends to q is what q receives from p1.
                            Assert.Equal(m.InputSplits[q], ranks[q].OutputSplits[p1]);
                            Assert.Equal(
                                m.InputSplits[q],
                                m.ExpertCounts.Skip(q * p.LocalExperts).Take(p.LocalExperts).Sum()
                            );
                        }
                        Assert.True(
                            m.RoutedRows >= m.RowsReceived
                                && m.RoutedRows - m.RowsReceived < p.Align * p.LocalExperts + (p.Align == 1 ? 1 : 0)
                        );
                    }
                },
                iter: Iterations / 2,
                threads: 1
            );
    }

    private static GroupInputs Tagged(GroupInputs g, int group)
    {
        var x = Tensor.Uninitialized(DType.Float32, g.X.ShapeArray());
        Span<float> values = x.AsSpan<float>();
        int d = g.X.RowLength;
        for (int i = 0; i < values.Length; i++)
            values[i] = DispatchInputs.Tag(group, i / d);
        var scores = Tensor.Uninitialized(DType.Float32, g.Scores.ShapeArray());
        scores.AsSpan<float>().Fill(1f);
        return new GroupInputs(x, scores, g.Ids);
    }
}
