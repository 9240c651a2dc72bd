using System.Collections.Immutable;
using CsCheck;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// Backward of out = combine(f(dispatch(x, s))) with the row-wise expert f_e(v) = v · c_e: for the loss
/// sum(out ⊙ g), ∂/∂x[t] = Σ_k s·c_e·g[t] and ∂/∂s[t,k] = c_e·⟨x[t], g[t]⟩ in both score modes. Checked
/// against that formula in float64 and bitwise across EP sizes, SP sizes, policies, layouts and alignments.
/// </summary>
public class DispatchBackwardTests
{
    private static float C(int e) => 0.5f + e / 4f;

    private static Tensor Scale(Tensor rows, ImmutableArray<int> tokensPerLocalExpert, int firstExpert) =>
        DispatchHarness.ApplyExperts(rows, tokensPerLocalExpert, firstExpert, (e, v) => v * C(e));

    private sealed record Grads(Tensor GradX, Tensor GradScores);

    /// <summary>Forward and backward on one rank; the gradients SP-reduced where the layout is replicated.</summary>
    private static Grads Backward(
        TokenDispatcher dispatcher,
        int firstExpert,
        GroupInputs mine,
        int? total,
        Tensor gradOut,
        bool scoreBefore
    )
    {
        DispatchResult d = dispatcher.Dispatch(mine.X, mine.Scores, mine.Ids, total);
        CombineResult combined = dispatcher.CombineWithState(
            Scale(d.RoutedTokens, d.TokensPerLocalExpert, firstExpert),
            d.Metadata,
            mine.X
        );
        CombineBackwardResult cb = dispatcher.CombineBackward(gradOut, combined.State);
        Assert.Equal(d.RoutedTokens.ShapeArray(), cb.GradRoutedOutput.ShapeArray());
        DispatchBackwardResult db = dispatcher.DispatchBackward(
            Scale(cb.GradRoutedOutput, d.TokensPerLocalExpert, firstExpert),
            d.Metadata,
            mine.X
        );
        Assert.Equal(mine.X.ShapeArray(), db.GradX.ShapeArray());
        Tensor? scores = scoreBefore ? db.GradTopScores : cb.GradTopScores;
        Assert.NotNull(scores);
        Assert.Null(scoreBefore ? cb.GradTopScores : db.GradTopScores);
        Assert.Equal(mine.Scores.ShapeArray(), scores.ShapeArray());
        return new Grads(dispatcher.ReduceSequenceParallel(db.GradX), dispatcher.ReduceSequenceParallel(scores));
    }

    private static Tensor GradOut(GroupInputs g, int seed)
    {
        var random = new Random(seed);
        var grad = Tensor.Uninitialized(DType.Float32, g.X.ShapeArray());
        foreach (ref float v in grad.AsSpan<float>())
            v = (float)(random.NextDouble() * 2 - 1);
        return grad;
    }

    private static Tensor Rows(Tensor t, int start, int count)
    {
        int[] shape = t.ShapeArray();
        shape[0] = count;
        var slice = Tensor.Uninitialized(DType.Float32, shape);
        int width = t.RowLength;
        if (count > 0)
            t.AsSpan<float>().Slice(start * width, count * width).CopyTo(slice.AsSpan<float>());
        return slice;
    }

    [Fact]
    public void Gradients_MatchTheDenseFormula_AndAreBitwiseTheSameOnEveryLayout()
    {
        DispatchGen
            .Problems(tokens: Gen.Int[0, 40])
            .Sample(
                p =>
                {
                    GroupInputs[] inputs = p.Inputs();
                    Tensor[] gradOut = inputs.Select((g, i) => GradOut(g, p.Seed + i)).ToArray();
                    Grads[] ranks = DispatchHarness.Run(
                        p,
                        inputs,
                        c =>
                        {
                            var (start, real, _) = NaiveDispatch.Shard(
                                p.Sharding,
                                c.Full.X.Rows,
                                p.Sp,
                                c.Groups.SpRank
                            );
                            Tensor g = gradOut[c.Group];
                            // Replicated: the gradient of the SP-summed result, the same on every SP rank; sharded: the
                            // shard's rows.
                            Tensor mineGrad = p.Layout == SequenceLayout.Replicated ? g : Rows(g, start, real);
                            return Backward(
                                c.Dispatcher,
                                c.Rank * p.LocalExperts,
                                c.Mine,
                                c.TotalTokens,
                                mineGrad,
                                p.ScoreBefore
                            );
                        }
                    );

                    for (int group = 0; group < p.GroupCount; group++)
                    {
                        GroupInputs inputsG = inputs[group];
                        Tensor gradX = Assemble(p, ranks, group, r => r.GradX, p.Dim);
                        Tensor gradS = Assemble(p, ranks, group, r => r.GradScores, p.TopK);

                        // Bitwise: the same as the single-rank local dispatcher.
                        var local = new LocalTokenDispatcher(
                            p.Config with
                            {
                                Layout = SequenceLayout.Replicated,
                                Sharding = SpShardingPolicy.PadToMultiple,
                                ExpertAlignment = 1,
                            }
                        );
                        Grads single = Backward(local, 0, inputsG, null, gradOut[group], p.ScoreBefore);
                        Assert.Null(
                            DispatchHarness.BitwiseMismatch($"{p}: grad x of group {group}", single.GradX, gradX)
                        );
                        Assert.Null(
                            DispatchHarness.BitwiseMismatch(
                                $"{p}: grad scores of group {group}",
                                single.GradScores,
                                gradS
                            )
                        );

                        // Dense float64 formula, the error measured against the size of the terms summed: a group of
                        // one token whose x and output gradient are nearly orthogonal has score gradients far smaller
                        // than the float32 rounding of their eight products (one such case read 4e-5 of its own norm).
                        var (wantX, wantS, scaleX, scaleS) = Dense(inputsG, gradOut[group]);
                        double errorX = NaiveDispatch.ScaledError(wantX, gradX.AsSpan<float>(), scaleX);
                        double errorS = NaiveDispatch.ScaledError(wantS, gradS.AsSpan<float>(), scaleS);
                        Assert.True(errorX < 1e-5, $"{p}: grad x of group {group}: error {errorX} of the terms' size");
                        Assert.True(
                            errorS < 1e-5,
                            $"{p}: grad scores of group {group}: error {errorS} of the terms' size"
                        );
                    }
                },
                iter: 60,
                threads: 1
            );
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Gradients_MatchCentralFiniteDifferences(bool scoreBefore)
    {
        // A small single-rank case; float64 finite differences of the float32 forward with a step large
        // enough that rounding stays far below the tolerance (the loss is linear in x and in s).
        var config = new TokenDispatcherConfig(6, 2) { ScoreBeforeExperts = scoreBefore };
        var random = new Random(7);
        GroupInputs g = RandomInputs.Create(random, 5, 3, 6, 2, DType.Int32, signedScores: true);
        Tensor gradOut = GradOut(g, 11);
        Grads grads = Backward(new LocalTokenDispatcher(config), 0, g, null, gradOut, scoreBefore);

        double Loss(GroupInputs inputs)
        {
            var dispatcher = new LocalTokenDispatcher(config);
            DispatchResult d = dispatcher.Dispatch(inputs.X, inputs.Scores, inputs.Ids);
            Tensor output = dispatcher.Combine(Scale(d.RoutedTokens, d.TokensPerLocalExpert, 0), d.Metadata, inputs.X);
            double sum = 0;
            for (int i = 0; i < output.ElementCount; i++)
                sum += (double)output.AsSpan<float>()[i] * gradOut.AsSpan<float>()[i];
            return sum;
        }

        const float h = 0.5f; // the loss is linear in each element, so a large step only shrinks rounding
        void Check(Tensor parameter, Tensor analytic, string name)
        {
            for (int i = 0; i < parameter.ElementCount; i++)
            {
                float saved = parameter.AsSpan<float>()[i];
                parameter.AsSpan<float>()[i] = saved + h;
                double plus = Loss(g);
                parameter.AsSpan<float>()[i] = saved - h;
                double minus = Loss(g);
                parameter.AsSpan<float>()[i] = saved;
                double numeric = (plus - minus) / (2 * h);
                Assert.True(
                    Math.Abs(numeric - analytic.AsSpan<float>()[i]) < 1e-4 * Math.Max(1, Math.Abs(numeric)),
                    $"{name}[{i}]: finite difference {numeric}, analytic {analytic.AsSpan<float>()[i]}"
                );
            }
        }
        Check(g.X, grads.GradX, "grad x");
        Check(g.Scores, grads.GradScores, "grad scores");
    }

    private static Tensor Assemble(DispatchProblem p, Grads[] ranks, int group, Func<Grads, Tensor> pick, int rowLength)
    {
        int first = group * p.Sp;
        if (p.Layout == SequenceLayout.Replicated)
            return pick(ranks[first]);
        return DispatchHarness.Concat(Enumerable.Range(first, p.Sp).Select(r => pick(ranks[r])).ToArray(), rowLength);
    }

    /// <summary>
    /// The gradients in float64, and beside each element the sum of the absolute values of its terms (the scale of the
    /// float32 rounding a correct implementation may show).
    /// </summary>
    private static (double[] X, double[] S, double[] ScaleX, double[] ScaleS) Dense(GroupInputs g, Tensor gradOut)
    {
        int tokens = g.X.Rows,
            d = g.X.RowLength,
            k = g.Scores.Dim(1);
        var gx = new double[tokens * d];
        var gs = new double[tokens * k];
        var scaleX = new double[tokens * d];
        var scaleS = new double[tokens * k];
        ReadOnlySpan<float> x = g.X.AsSpan<float>(),
            s = g.Scores.AsSpan<float>(),
            go = gradOut.AsSpan<float>();
        for (int t = 0; t < tokens; t++)
        {
            double dot = 0,
                absDot = 0;
            for (int j = 0; j < d; j++)
            {
                dot += (double)x[t * d + j] * go[t * d + j];
                absDot += Math.Abs((double)x[t * d + j] * go[t * d + j]);
            }
            for (int slot = 0; slot < k; slot++)
            {
                double c = 0.5 + DispatchInputs.Id(g.Ids, t * k + slot) / 4.0;
                for (int j = 0; j < d; j++)
                {
                    gx[t * d + j] += s[t * k + slot] * c * go[t * d + j];
                    scaleX[t * d + j] += Math.Abs(s[t * k + slot] * c * go[t * d + j]);
                }
                gs[t * k + slot] = c * dot;
                scaleS[t * k + slot] = c * absDot;
            }
        }
        return (gx, gs, scaleX, scaleS);
    }
}
