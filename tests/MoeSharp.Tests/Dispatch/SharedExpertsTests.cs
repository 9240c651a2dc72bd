using CsCheck;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// Shared experts (DESIGN.md §2, overlap): each rank computes them for its own rows only, their output is
/// each token's starting value, and the SP sum counts them once.
/// </summary>
public class SharedExpertsTests
{
    private static float SharedFn(float v) => v * 0.75f + 0.5f;

    private static Tensor Shared(Tensor rows)
    {
        var output = Tensor.Uninitialized(DType.Float32, rows.ShapeArray());
        ReadOnlySpan<float> src = rows.AsSpan<float>();
        Span<float> dst = output.AsSpan<float>();
        for (int i = 0; i < src.Length; i++)
            dst[i] = SharedFn(src[i]);
        return output;
    }

    private sealed record RankResult(List<Tensor> Calls, Tensor Output, Tensor Final);

    [Fact]
    public void SharedExperts_SeeOwnRows_StartEachSum_AndCountOnceInTheSpSum()
    {
        DispatchGen
            .Problems(tokens: Gen.Int[0, 60])
            .Sample(
                p =>
                {
                    GroupInputs[] inputs = p.Inputs();
                    RankResult[] ranks = DispatchHarness.Run(
                        p,
                        inputs,
                        c =>
                        {
                            var calls = new List<Tensor>();
                            DispatchResult d = c.Dispatch();
                            Tensor y = DispatchHarness.ApplyExperts(
                                d.RoutedTokens,
                                d.TokensPerLocalExpert,
                                c.Rank * p.LocalExperts,
                                NaiveDispatch.Scaled
                            );
                            Tensor output = c.Dispatcher.Combine(
                                y,
                                d.Metadata,
                                c.Mine.X,
                                own =>
                                {
                                    calls.Add(own.Clone());
                                    return Shared(own);
                                }
                            );
                            return new RankResult(calls, output, c.Dispatcher.ReduceSequenceParallel(output));
                        }
                    );

                    for (int r = 0; r < p.World; r++)
                    {
                        GroupInputs full = inputs[r / p.Sp];
                        var (start, real, _) = NaiveDispatch.Shard(p.Sharding, full.X.Rows, p.Sp, r % p.Sp);
                        Tensor call = Assert.Single(ranks[r].Calls);
                        // Exactly the rank's own rows, [T_s, D].
                        Assert.Equal([real, p.Dim], call.ShapeArray());
                        Assert.True(
                            full.X.AsSpan<float>()
                                .Slice(start * p.Dim, real * p.Dim)
                                .SequenceEqual(call.AsSpan<float>()),
                            $"{p}: rank {r}'s shared experts did not get rows [{start}, {start + real})"
                        );
                        if (p.Layout == SequenceLayout.Replicated)
                        {
                            ReadOnlySpan<float> o = ranks[r].Output.AsSpan<float>();
                            for (int i = 0; i < o.Length; i++)
                            {
                                int t = i / p.Dim;
                                if ((t < start || t >= start + real) && BitConverter.SingleToInt32Bits(o[i]) != 0)
                                {
                                    Assert.Fail(
                                        $"{p}: rank {r} row {t} outside its shard holds {o[i]} before the SP reduce"
                                    );
                                }
                            }
                        }
                    }

                    Tensor[] finals = DispatchHarness.Finals(p, inputs, ranks.Select(x => x.Final).ToArray());
                    for (int g = 0; g < p.GroupCount; g++)
                    {
                        // Bitwise: shared output first, then the routed terms in ascending expert id.
                        Tensor expected = NaiveDispatch.Final32(
                            inputs[g],
                            p.ScoreBefore,
                            NaiveDispatch.Scaled,
                            Shared(inputs[g].X)
                        );
                        Assert.Null(DispatchHarness.BitwiseMismatch($"{p}: final.g{g}", expected, finals[g]));

                        // Dense float64: shared once plus Σ_k s·c_e·x.
                        double[] dense = NaiveDispatch.DenseScaled64(inputs[g]);
                        double[] scale = NaiveDispatch.DenseScaled64Magnitude(inputs[g]);
                        ReadOnlySpan<float> x = inputs[g].X.AsSpan<float>();
                        for (int i = 0; i < dense.Length; i++)
                        {
                            dense[i] += 0.75 * x[i] + 0.5;
                            scale[i] += Math.Abs(0.75 * x[i]) + 0.5;
                        }
                        double error = NaiveDispatch.ScaledError(dense, finals[g].AsSpan<float>(), scale);
                        Assert.True(error < 1e-5, $"{p}: group {g} error {error} of the terms' size");
                    }
                },
                iter: 60,
                threads: 1
            );
    }
}
