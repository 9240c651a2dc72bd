using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// bfloat16 rows: the same invariants as float32 (bitwise across EP, SP, sharding, layout, alignment), and the
/// arithmetic the dispatcher documents — float32 products rounded once to bfloat16 at dispatch, a float32
/// accumulator rounded once at combine — checked against a direct definition.
/// </summary>
public class BFloat16DispatchTests
{
    private const int Iterations = 60;

    [Fact]
    public void FinalOutput_IsBitwiseTheSingleRankRun_AndTheBFloat16Definition()
    {
        DispatchGen
            .Problems()
            .Sample(
                p =>
                {
                    GroupInputs[] inputs = InBFloat16(p.Inputs());
                    var ranks = DispatchHarness.Run(
                        p,
                        inputs,
                        c =>
                        {
                            DispatchResult d = c.Dispatch();
                            Assert.Equal(DType.BFloat16, d.RoutedTokens.DType);
                            Tensor y = AffineExperts(d.RoutedTokens, d, c.Rank * p.LocalExperts);
                            Tensor output = c.Dispatcher.Combine(y, d.Metadata, c.Mine.X);
                            Assert.Equal(DType.BFloat16, output.DType);
                            return c.Dispatcher.ReduceSequenceParallel(output);
                        }
                    );
                    Tensor[] finals = DispatchHarness.Finals(p, inputs, ranks);
                    for (int g = 0; g < p.GroupCount; g++)
                    {
                        Tensor expected = Definition(inputs[g], p.ScoreBefore);
                        string? mismatch = DispatchHarness.BitwiseMismatch($"{p}: final.g{g}", expected, finals[g]);
                        Assert.True(mismatch is null, mismatch);
                    }
                },
                iter: Iterations,
                threads: 1
            );
    }

    [Fact]
    public void Backward_GradX_IsBitwiseTheSingleRankRun()
    {
        DispatchGen
            .Problems()
            .Sample(
                p =>
                {
                    GroupInputs[] inputs = InBFloat16(p.Inputs());
                    var random = new Random(p.Seed + 1);
                    Tensor[] gradOut = inputs.Select(g => RandomRows(random, g.X.Rows, p.Dim)).ToArray();
                    var ranks = DispatchHarness.Run(
                        p,
                        inputs,
                        c =>
                        {
                            DispatchResult d = c.Dispatch();
                            CombineResult combined = c.Dispatcher.CombineWithState(
                                AffineExperts(d.RoutedTokens, d, c.Rank * p.LocalExperts),
                                d.Metadata,
                                c.Mine.X
                            );
                            Tensor myGrad =
                                p.Layout == SequenceLayout.Sharded
                                    ? DispatchWorldRunner
                                        .ShardOf(
                                            new GroupInputs(gradOut[c.Group], c.Full.Scores, c.Full.Ids),
                                            p.Sharding,
                                            p.Sp,
                                            c.Groups.SpRank
                                        )
                                        .X
                                    : gradOut[c.Group];
                            CombineBackwardResult cb = c.Dispatcher.CombineBackward(myGrad, combined.State);
                            Assert.Equal(DType.BFloat16, cb.GradRoutedOutput.DType);
                            // The affine expert's gradient is its factor: the same float32 product, rounded.
                            Tensor gradRouted = AffineExpertsBackward(cb.GradRoutedOutput, d, c.Rank * p.LocalExperts);
                            DispatchBackwardResult db = c.Dispatcher.DispatchBackward(gradRouted, d.Metadata, c.Mine.X);
                            return c.Dispatcher.ReduceSequenceParallel(db.GradX);
                        }
                    );
                    Tensor[] finals = DispatchHarness.Finals(p, inputs, ranks);
                    for (int g = 0; g < p.GroupCount; g++)
                    {
                        Tensor expected = SingleRankGradX(p.Config, inputs[g], gradOut[g]);
                        string? mismatch = DispatchHarness.BitwiseMismatch($"{p}: gradX.g{g}", expected, finals[g]);
                        Assert.True(mismatch is null, mismatch);
                    }
                },
                iter: Iterations,
                threads: 1
            );
    }

    [Fact]
    public void MixedRowTypes_AreRejectedWithTheirNames()
    {
        var config = new TokenDispatcherConfig(4, 2);
        var dispatcher = new LocalTokenDispatcher(config);
        GroupInputs f32 = RandomInputs.Create(new Random(3), 5, 8, 4, 2, DType.Int32, signedScores: true);
        Tensor x = f32.X.ToBFloat16();
        DispatchResult d = dispatcher.Dispatch(x, f32.Scores, f32.Ids);
        var error = Assert.Throws<ArgumentException>(() =>
            dispatcher.Combine(d.RoutedTokens.ToFloat32(), d.Metadata, x)
        );
        Assert.Equal("routedOutput", error.ParamName);
        Assert.Contains("BFloat16", error.Message);
        error = Assert.Throws<ArgumentException>(() => dispatcher.Combine(d.RoutedTokens, d.Metadata, f32.X));
        Assert.Equal("x", error.ParamName);
        error = Assert.Throws<ArgumentException>(() =>
            dispatcher.Dispatch(Tensor.Zeros(DType.Int32, 5, 8), f32.Scores, f32.Ids)
        );
        Assert.Equal("x", error.ParamName);
    }

    [Theory]
    [InlineData(64, 16, false)]
    [InlineData(2048, 1024, false)] // a 32 MiB output: the streaming-store path
    [InlineData(300, 33, true)]
    public void TokenOrderScatter_EqualsTheGather(int tokens, int dim, bool scaled)
    {
        const int k = 8;
        var random = new Random(tokens + dim);
        var kernels = new MoeSharp.Compute.HostMoeKernels();
        Tensor source = RandomRows(random, tokens, dim);
        int rows = tokens * k + 5;
        int[] rowOfEntry = Enumerable.Range(0, rows).OrderBy(_ => random.Next()).Take(tokens * k).ToArray();
        var tokenOf = Enumerable.Repeat(-1, rows).ToArray();
        for (int e = 0; e < rowOfEntry.Length; e++)
            tokenOf[rowOfEntry[e]] = e / k;
        Tensor? scale = scaled
            ? Tensor.FromArray(Enumerable.Range(0, rows).Select(_ => (float)random.NextDouble()).ToArray(), rows)
            : null;
        var scattered = Tensor.Zeros(DType.BFloat16, rows, dim);
        var gathered = Tensor.Zeros(DType.BFloat16, rows, dim);
        kernels.Rows.ScatterTokenRows(
            source,
            0,
            new TokenScatter(Tensor.FromArray(tokenOf, rows), Tensor.FromArray(rowOfEntry, tokens * k), k, scale),
            scattered
        );
        kernels.Rows.GatherRows(source, 0, Tensor.FromArray(tokenOf, rows), scale, gathered);
        string? mismatch = DispatchHarness.BitwiseMismatch($"T {tokens}, D {dim}", gathered, scattered);
        Assert.True(mismatch is null, mismatch);
    }

    private static GroupInputs[] InBFloat16(GroupInputs[] inputs) =>
        inputs.Select(g => g.WithRowType(DType.BFloat16)).ToArray();

    private static Tensor RandomRows(Random random, int rows, int dim)
    {
        var t = Tensor.Uninitialized(DType.Float32, rows, dim);
        foreach (ref float v in t.AsSpan<float>())
            v = (float)(random.NextDouble() * 2 - 1);
        return t.ToBFloat16();
    }

    /// <summary>
    /// <see cref="NaiveDispatch.Affine"/> on bfloat16 rows: computed on the widened value, rounded once.
    /// </summary>
    private static Tensor AffineExperts(Tensor routed, DispatchResult d, int firstExpert) =>
        DispatchHarness
            .ApplyExperts(routed.ToFloat32(), d.TokensPerLocalExpert, firstExpert, NaiveDispatch.Affine)
            .ToBFloat16();

    private static Tensor AffineExpertsBackward(Tensor grad, DispatchResult d, int firstExpert) =>
        DispatchHarness
            .ApplyExperts(grad.ToFloat32(), d.TokensPerLocalExpert, firstExpert, NaiveDispatch.Scaled)
            .ToBFloat16();

    /// <summary>
    /// The bfloat16 definition, per token, terms in ascending expert id: score before,
    /// <c>bf(bf(x·s)·f + c)</c>; score after, <c>bf(x·f + c)·s</c> in float32; added from +0 in float32, rounded once.
    /// </summary>
    private static Tensor Definition(GroupInputs g, bool scoreBefore)
    {
        int tokens = g.X.Rows,
            d = g.X.RowLength,
            k = g.Scores.RowLength;
        ReadOnlySpan<BFloat16> x = g.X.AsSpan<BFloat16>();
        ReadOnlySpan<float> scores = g.Scores.AsSpan<float>();
        var result = Tensor.Uninitialized(DType.BFloat16, tokens, d);
        Span<BFloat16> output = result.AsSpan<BFloat16>();
        for (int t = 0; t < tokens; t++)
        {
            var slots = Enumerable.Range(0, k).OrderBy(slot => DispatchInputs.Id(g.Ids, t * k + slot)).ToArray();
            for (int j = 0; j < d; j++)
            {
                float acc = 0f;
                foreach (int slot in slots)
                {
                    int e = DispatchInputs.Id(g.Ids, t * k + slot);
                    float s = scores[t * k + slot],
                        v = x[t * d + j].ToSingle();
                    acc += scoreBefore
                        ? Round(NaiveDispatch.Affine(e, Round(v * s)))
                        : Round(NaiveDispatch.Affine(e, v)) * s;
                }
                output[t * d + j] = BFloat16.FromSingle(acc);
            }
        }
        return result;
    }

    private static float Round(float v) => BFloat16.FromSingle(v).ToSingle();

    private static Tensor SingleRankGradX(TokenDispatcherConfig config, GroupInputs g, Tensor gradOut)
    {
        var reference = config with
        {
            Layout = SequenceLayout.Replicated,
            Sharding = SpShardingPolicy.PadToMultiple,
            ExpertAlignment = 1,
        };
        var dispatcher = new LocalTokenDispatcher(reference);
        DispatchResult d = dispatcher.Dispatch(g.X, g.Scores, g.Ids);
        CombineResult combined = dispatcher.CombineWithState(AffineExperts(d.RoutedTokens, d, 0), d.Metadata, g.X);
        CombineBackwardResult cb = dispatcher.CombineBackward(gradOut, combined.State);
        return dispatcher.DispatchBackward(AffineExpertsBackward(cb.GradRoutedOutput, d, 0), d.Metadata, g.X).GradX;
    }
}
