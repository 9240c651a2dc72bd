using MoeSharp.Routing;
using MoeSharp.Tensors;
using Xunit.Abstractions;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// The float32 pieces against the float64 reference: forward values, and every gradient against
/// central finite differences of the reference loss.
/// </summary>
public sealed class MoeLayerGradientTests(ITestOutputHelper output)
{
    public static TheoryData<string, ScoreFunction, bool, float, bool, int, int, int, bool> Configs() =>
        new()
        {
            // name, score func, route norm, scale, score before experts, groups, limited, shared hidden, bias
            { "softmax_after", ScoreFunction.Softmax, false, 1f, false, 0, 0, 0, false },
            { "sigmoid_norm_before_shared_bias", ScoreFunction.Sigmoid, true, 2.5f, true, 0, 0, 5, true },
            { "sigmoid_node_limited_after", ScoreFunction.Sigmoid, true, 1f, false, 3, 2, 0, false },
            { "softmax_norm_before_shared", ScoreFunction.Softmax, true, 1.5f, true, 0, 0, 3, false },
        };

    [Theory]
    [MemberData(nameof(Configs))]
    public void Pieces_match_float64_reference_and_finite_differences(
        string name,
        ScoreFunction scoreFunc,
        bool routeNorm,
        float routeScale,
        bool before,
        int groups,
        int limited,
        int sharedHidden,
        bool bias
    )
    {
        const int tokens = 7;
        var config = new MoeLayerConfig(
            Dim: 6,
            Hidden: 5,
            Experts: 6,
            TopK: 2,
            scoreFunc,
            routeNorm,
            routeScale,
            before,
            groups,
            limited,
            sharedHidden,
            bias
        );
        var random = new Random(name.Length * 7919);
        var values = new Dictionary<string, float[]> { ["x"] = RandomArray(random, tokens * config.Dim, 1.0) };
        foreach (var (pname, shape) in config.Parameters())
        {
            values[pname] = RandomArray(random, shape.Aggregate(1, (a, b) => a * b), 1.0 / Math.Sqrt(shape[^1]));
        }
        if (bias)
            values["router.expert_bias"] = RandomArray(random, config.Experts, 0.3);
        var gradOut = RandomArray(random, tokens * config.Dim, 1.0);

        var layer = new SingleRankMoeLayer(config);
        foreach (var (pname, _) in config.Parameters())
            values[pname].CopyTo(layer.Parameter(pname).AsSpan<float>());
        if (bias)
            values["router.expert_bias"].CopyTo(layer.ExpertBias!.AsSpan<float>());
        var state = layer.Forward(Tensor.FromArray((float[])values["x"].Clone(), tokens, config.Dim));
        var grads = layer.Backward(state, Tensor.FromArray(gradOut, tokens, config.Dim));

        var reference = values.ToDictionary(kv => kv.Key, kv => kv.Value.Select(v => (double)v).ToArray());
        var refOut = ReferenceMoeLayer.Forward(config, tokens, reference);
        Assert.Equal(refOut.ExpertIds, state.Routing.ExpertIds.AsSpan<long>().ToArray());
        Assert.Equal(refOut.TokensPerExpert, state.Routing.TokensPerExpert.AsSpan<long>().ToArray());
        Assert.True(FiniteDifference.RelativeError(state.Out.AsSpan<float>(), refOut.Out) < 1e-5);
        Assert.True(FiniteDifference.RelativeError(state.Routing.TopScores.AsSpan<float>(), refOut.TopScores) < 1e-5);

        double[] g64 = gradOut.Select(v => (double)v).ToArray();
        foreach (var (pname, grad) in grads)
        {
            double[] fd = FiniteDifference.Gradient(
                () => ReferenceMoeLayer.Loss(config, tokens, reference, g64),
                reference[pname]
            );
            double error = FiniteDifference.RelativeError(grad.AsSpan<float>(), fd);
            output.WriteLine($"{name} grad.{pname}: relative error vs finite differences {error:E2}");
            Assert.True(error < 1e-4, $"{name} grad.{pname}: relative error {error:E3}");
        }
    }

    private static float[] RandomArray(Random random, int length, double scale) =>
        Enumerable.Range(0, length).Select(_ => (float)(((random.NextDouble() * 2) - 1) * scale)).ToArray();
}
