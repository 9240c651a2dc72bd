using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Routing;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Xunit.Abstractions;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// Every gradient of the multi-rank layer against central finite differences of the float64 reference.
/// </summary>
public sealed class MoeLayerMultiRankGradientTests(ITestOutputHelper output)
{
    public static TheoryData<bool, int, int, SequenceLayout, SpShardingPolicy> Cases() =>
        new()
        {
            // score before experts, world, sp, layout, sharding
            { false, 2, 2, SequenceLayout.Replicated, SpShardingPolicy.PadToMultiple },
            { true, 2, 2, SequenceLayout.Sharded, SpShardingPolicy.Balanced },
            { true, 3, 1, SequenceLayout.Replicated, SpShardingPolicy.PadToMultiple },
        };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Multi_rank_gradients_match_finite_differences(
        bool before,
        int world,
        int sp,
        SequenceLayout layout,
        SpShardingPolicy sharding
    )
    {
        const int tokens = 7;
        var config = new MoeLayerConfig(
            Dim: 5,
            Hidden: 4,
            Experts: 6,
            TopK: 2,
            ScoreFunction.Sigmoid,
            RouteNorm: true,
            RouteScale: 1.5f,
            before,
            NumExpertGroups: 0,
            NumLimitedGroups: 0,
            SharedHidden: 3,
            HasExpertBias: true
        );
        var args = new MoeLayerArgs(config.Dim, config.Hidden, config.Experts, config.TopK)
        {
            ScoreFunc = config.ScoreFunc,
            RouteNorm = true,
            RouteScale = 1.5f,
            SharedHidden = 3,
            LoadBalancing = true,
        };
        var random = new Random(world * 10 + sp);
        var values = new Dictionary<string, float[]> { ["x"] = Random(random, tokens * config.Dim, 1.0) };
        foreach (var (name, shape) in config.Parameters())
            values[name] = Random(random, shape.Aggregate(1, (a, b) => a * b), 1.0 / Math.Sqrt(shape[^1]));
        values["router.expert_bias"] = Random(random, config.Experts, 0.2);
        float[] gradOut = Random(random, tokens * config.Dim, 1.0);

        var weights = values
            .Where(kv => kv.Key != "x")
            .Select(kv => new KeyValuePair<string, Tensor>(kv.Key, Tensor.FromArray(kv.Value, ShapeOf(config, kv.Key))))
            .ToList();
        var result = LayerWorldRunner.Run(
            args,
            before,
            weights,
            Tensor.FromArray(values["x"], tokens, config.Dim),
            Tensor.FromArray(gradOut, tokens, config.Dim),
            new LayerLayout(world, sp, layout, sharding)
        );

        var reference = values.ToDictionary(kv => kv.Key, kv => kv.Value.Select(v => (double)v).ToArray());
        double[] g64 = gradOut.Select(v => (double)v).ToArray();
        Assert.Equal(
            ReferenceMoeLayer.Forward(config, tokens, reference).ExpertIds,
            result.ExpertIds.AsSpan<long>().ToArray()
        );
        foreach (var (name, grad) in result.Grads)
        {
            double[] fd = FiniteDifference.Gradient(
                () => ReferenceMoeLayer.Loss(config, tokens, reference, g64),
                reference[name]
            );
            double error = FiniteDifference.RelativeError(grad.AsSpan<float>(), fd);
            output.WriteLine($"grad.{name}: relative error vs finite differences {error:E2}");
            Assert.True(error < 1e-4, $"grad.{name}: relative error {error:E3}");
        }
        Assert.Equal(config.Parameters().Count() + 1, result.Grads.Count);
    }

    private static int[] ShapeOf(MoeLayerConfig config, string name) =>
        name == "router.expert_bias" ? [config.Experts] : config.Parameters().First(p => p.Name == name).Shape;

    private static float[] Random(Random random, int length, double scale) =>
        Enumerable.Range(0, length).Select(_ => (float)(((random.NextDouble() * 2) - 1) * scale)).ToArray();
}
