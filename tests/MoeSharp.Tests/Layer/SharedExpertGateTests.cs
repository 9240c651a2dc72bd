using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Routing;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Xunit.Abstractions;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// Qwen2-MoE's shared expert gate (<c>sigmoid(x · g) ⊙ shared(x)</c>): forward against the float64 reference, every
/// gradient (gate included) against its finite differences, and the gradients bitwise the same on multi-rank layouts.
/// </summary>
public sealed class SharedExpertGateTests(ITestOutputHelper output)
{
    private const int Tokens = 8;
    private static readonly MoeLayerConfig Config = new(
        Dim: 6,
        Hidden: 5,
        Experts: 4,
        TopK: 2,
        ScoreFunction.Softmax,
        RouteNorm: false,
        RouteScale: 1f,
        ScoreBeforeExperts: false,
        NumExpertGroups: 0,
        NumLimitedGroups: 0,
        SharedHidden: 5,
        HasExpertBias: false
    );

    private static readonly MoeLayerArgs Args = new(Config.Dim, Config.Hidden, Config.Experts, Config.TopK)
    {
        ScoreFunc = ScoreFunction.Softmax,
        SharedHidden = Config.SharedHidden,
        SharedExpertGate = true,
    };

    [Fact]
    public void Gated_shared_expert_matches_the_reference_and_its_finite_differences()
    {
        var (values, gradOut) = Values();
        MoeLayer layer = MoeLayer.CreateLocal(Args);
        MoeLayerCheckpoint.Load(layer, Weights(values));
        Tensor y = layer.Forward(Tensor.FromArray((float[])values["x"].Clone(), Tokens, Config.Dim));
        MoeLayerGradients grads = layer.Backward(Tensor.FromArray(gradOut, Tokens, Config.Dim));

        var reference = values.ToDictionary(kv => kv.Key, kv => kv.Value.Select(v => (double)v).ToArray());
        Assert.True(
            FiniteDifference.RelativeError(y.AsSpan<float>(), ReferenceMoeLayer.Forward(Config, Tokens, reference).Out)
                < 1e-5
        );
        double[] g64 = gradOut.Select(v => (double)v).ToArray();
        var checks = layer.Parameters.Select(p => (p.Name, p.Grad)).Append(("x", grads.GradX));
        foreach (var (name, grad) in checks)
        {
            double[] fd = FiniteDifference.Gradient(
                () => ReferenceMoeLayer.Loss(Config, Tokens, reference, g64),
                reference[name]
            );
            double error = FiniteDifference.RelativeError(grad.AsSpan<float>(), fd);
            output.WriteLine($"grad.{name}: relative error vs finite differences {error:E2}");
            Assert.True(error < 1e-4, $"grad.{name}: relative error {error:E3}");
        }
    }

    [Theory]
    [InlineData(2, 1, SequenceLayout.Replicated)]
    [InlineData(4, 2, SequenceLayout.Replicated)]
    [InlineData(4, 2, SequenceLayout.Sharded)]
    public void Gate_gradients_are_bitwise_those_of_one_rank(int world, int sp, SequenceLayout sequenceLayout)
    {
        var (values, gradOut) = Values();
        var x = Tensor.FromArray(values["x"], Tokens, Config.Dim);
        var dy = Tensor.FromArray(gradOut, Tokens, Config.Dim);
        MoeLayer single = MoeLayer.CreateLocal(Args);
        MoeLayerCheckpoint.Load(single, Weights(values));
        single.Forward(x);
        single.Backward(dy);

        var layout = new LayerLayout(world, sp, sequenceLayout, SpShardingPolicy.Balanced);
        var gateGrads = InProcessWorld.Run(
            world,
            w =>
            {
                using var groups = ParallelGroups.Create(w, sp);
                var config = new TokenDispatcherConfig(Config.Experts, Config.TopK)
                {
                    Layout = sequenceLayout,
                    Sharding = SpShardingPolicy.Balanced,
                };
                var layer = MoeLayer.Create(Args, config, groups);
                MoeLayerCheckpoint.Load(layer, Weights(values));
                var (rankX, groupTokens, _) = LayerWorldRunner.RankRows(x, layout, w.Rank);
                var (groupStart, _) = LayerWorldRunner.GroupRows(Tokens, layout.Groups, w.Rank / sp);
                int start =
                    sequenceLayout == SequenceLayout.Replicated
                        ? groupStart
                        : LayerWorldRunner.RankRows(x, layout, w.Rank).OwnGlobalStart;
                layer.Forward(rankX, sequenceLayout == SequenceLayout.Sharded ? groupTokens : null);
                var rankDy = Tensor.FromArray(
                    gradOut.AsSpan(start * Config.Dim, rankX.Rows * Config.Dim).ToArray(),
                    rankX.Rows,
                    Config.Dim
                );
                layer.Backward(rankDy);
                return layer
                    .Parameters.Where(p => p.Name.StartsWith("shared.", StringComparison.Ordinal))
                    .ToDictionary(p => p.Name, p => p.Grad);
            },
            TimeSpan.FromSeconds(60)
        );
        foreach (Dictionary<string, Tensor> rank in gateGrads)
        {
            Assert.Equal(4, rank.Count);
            foreach (var (name, grad) in rank)
            {
                Assert.True(
                    grad.BitwiseEquals(single.Parameters.Single(p => p.Name == name).Grad),
                    $"{name} on world {world} sp {sp} {sequenceLayout}"
                );
            }
        }
    }

    private static (Dictionary<string, float[]> Values, float[] GradOut) Values()
    {
        var random = new Random(4242);
        float[] Draw(int n, double scale) =>
            Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() * 2 - 1) * scale)).ToArray();
        var values = new Dictionary<string, float[]> { ["x"] = Draw(Tokens * Config.Dim, 1.0) };
        foreach (var (name, shape) in Config.Parameters())
            values[name] = Draw(shape.Aggregate(1, (a, b) => a * b), 1.0 / Math.Sqrt(shape[^1]));
        values["shared.gate.weight"] = Draw(Config.Dim, 0.8);
        return (values, Draw(Tokens * Config.Dim, 1.0));
    }

    private static List<KeyValuePair<string, Tensor>> Weights(Dictionary<string, float[]> values)
    {
        var weights = Config
            .Parameters()
            .Select(p => new KeyValuePair<string, Tensor>(p.Name, Tensor.FromArray(values[p.Name], p.Shape)))
            .ToList();
        weights.Add(new("shared.gate.weight", Tensor.FromArray(values["shared.gate.weight"], 1, Config.Dim)));
        return weights;
    }
}
