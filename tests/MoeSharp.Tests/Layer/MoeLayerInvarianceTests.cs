using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Routing;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// The layer's output and input gradient are bitwise identical on every EP size, SP size, sharding policy,
/// layout and alignment; weight gradients too (rank-ordered chains), and the load counts agree.
/// </summary>
public sealed class MoeLayerInvarianceTests
{
    public static TheoryData<bool, int, bool, int> Cases() =>
        new()
        {
            // score before experts, shared hidden, load balancing bias, tokens
            { false, 0, false, 23 },
            { true, 6, true, 21 },
            { false, 5, true, 3 }, // fewer tokens than ranks in places
            { true, 0, false, 0 }, // an empty batch
        };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_and_backward_are_bitwise_identical_on_every_layout(
        bool before,
        int sharedHidden,
        bool bias,
        int tokens
    )
    {
        var args = new MoeLayerArgs(dim: 12, hidden: 10, numExperts: 8, topK: 3)
        {
            ScoreFunc = bias ? ScoreFunction.Sigmoid : ScoreFunction.Softmax,
            RouteNorm = bias,
            SharedHidden = sharedHidden,
            LoadBalancing = bias,
        };
        var random = new Random(tokens * 31 + sharedHidden);
        var weights = RandomWeights(args, random);
        Tensor x = RandomTensor(random, 1.0, tokens, args.Dim);
        Tensor gradOut = RandomTensor(random, 1.0, tokens, args.Dim);

        var single = LayerWorldRunner.Run(args, before, weights, x, gradOut, LayerLayout.Single);
        var layouts = LayerLayout
            .Variants(args.NumExperts)
            .Append(new LayerLayout(4, 2, SequenceLayout.Sharded, SpShardingPolicy.Balanced, Alignment: 16))
            .Append(new LayerLayout(8, 4, SequenceLayout.Replicated, SpShardingPolicy.PadToMultiple, Alignment: 4))
            .Append(new LayerLayout(1, 1, SequenceLayout.Sharded, SpShardingPolicy.Balanced));
        foreach (LayerLayout layout in layouts)
        {
            var r = LayerWorldRunner.Run(args, before, weights, x, gradOut, layout);
            Assert.True(single.Out.BitwiseEquals(r.Out), $"out differs on {layout}");
            Assert.True(single.TopScores.BitwiseEquals(r.TopScores), $"top_scores differ on {layout}");
            Assert.True(single.ExpertIds.BitwiseEquals(r.ExpertIds), $"expert_ids differ on {layout}");
            Assert.True(
                single.TokensPerExpert.BitwiseEquals(r.TokensPerExpert),
                $"tokens per expert differ on {layout}"
            );
            foreach (var (name, grad) in single.Grads)
            {
                Assert.True(
                    grad.BitwiseEquals(r.Grads[name]),
                    $"grad.{name} differs on {layout}: {TensorComparison.FirstBitwiseMismatch(name, grad, r.Grads[name])}"
                );
            }
        }
    }

    [Fact]
    public void Load_balancing_counts_each_token_once_and_updates_the_same_bias_everywhere()
    {
        var args = new MoeLayerArgs(dim: 8, hidden: 6, numExperts: 4, topK: 2)
        {
            LoadBalancing = true,
            ScoreFunc = ScoreFunction.Sigmoid,
        };
        var random = new Random(3);
        var weights = RandomWeights(args, random);
        Tensor x = RandomTensor(random, 1.0, 19, args.Dim);

        long[] expected = Counts(LayerLayout.Single);
        Assert.Equal(19L * 2, expected.Sum());
        Assert.Equal(
            expected,
            Counts(new LayerLayout(4, 2, SequenceLayout.Replicated, SpShardingPolicy.PadToMultiple))
        );
        Assert.Equal(expected, Counts(new LayerLayout(4, 4, SequenceLayout.Sharded, SpShardingPolicy.Balanced)));

        long[] Counts(LayerLayout layout)
        {
            var results = MoeSharp.Collectives.InProcessWorld.Run(
                layout.World,
                world =>
                {
                    using var groups = layout.World == 1 ? null : ParallelGroups.Create(world, layout.Sp);
                    MoeLayer layer = LayerWorldRunner.CreateLayer(args, false, layout, groups);
                    MoeLayerCheckpoint.Load(layer, weights);
                    var (rankX, groupTokens, _) = LayerWorldRunner.RankRows(x, layout, world.Rank);
                    layer.Forward(rankX, layout.Layout == SequenceLayout.Sharded ? groupTokens : null);
                    long[] summed = layer.UpdateExpertBias(0.01f);
                    Assert.All(layer.TokensPerExpert!.AsSpan<long>().ToArray(), c => Assert.Equal(0, c));
                    return (summed, layer.ExpertBias!.AsSpan<float>().ToArray());
                }
            );
            foreach (var r in results)
                Assert.Equal(results[0].Item2, r.Item2);
            return results[0].summed;
        }
    }

    internal static List<KeyValuePair<string, Tensor>> RandomWeights(MoeLayerArgs args, Random random)
    {
        int e = args.NumExperts,
            d = args.Dim,
            h = args.Hidden,
            hs = args.SharedHidden;
        var weights = new List<KeyValuePair<string, Tensor>>
        {
            new(MoeLayerCheckpoint.GateWeight, RandomTensor(random, 1 / Math.Sqrt(d), e, d)),
            new(MoeLayerCheckpoint.ExpertsW1, RandomTensor(random, 1 / Math.Sqrt(d), e, h, d)),
            new(MoeLayerCheckpoint.ExpertsW2, RandomTensor(random, 1 / Math.Sqrt(h), e, d, h)),
            new(MoeLayerCheckpoint.ExpertsW3, RandomTensor(random, 1 / Math.Sqrt(d), e, h, d)),
        };
        if (args.LoadBalancing)
            weights.Add(new(MoeLayerCheckpoint.ExpertBias, RandomTensor(random, 0.1, e)));
        if (hs > 0)
        {
            weights.Add(new(MoeLayerCheckpoint.SharedW1, RandomTensor(random, 1 / Math.Sqrt(d), hs, d)));
            weights.Add(new(MoeLayerCheckpoint.SharedW2, RandomTensor(random, 1 / Math.Sqrt(hs), d, hs)));
            weights.Add(new(MoeLayerCheckpoint.SharedW3, RandomTensor(random, 1 / Math.Sqrt(d), hs, d)));
        }
        return weights;
    }

    internal static Tensor RandomTensor(Random random, double scale, params int[] shape)
    {
        var t = Tensor.Zeros(DType.Float32, shape);
        Span<float> s = t.AsSpan<float>();
        for (int i = 0; i < s.Length; i++)
            s[i] = (float)((random.NextDouble() * 2 - 1) * scale);
        return t;
    }
}
