using System.Globalization;
using MoeSharp.Routing;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// Layer files the project has never seen: written here in the golden format from the float64 reference (forward)
/// and float64 central differences (every gradient), then replayed by <c>moe verify-golden</c>'s code, which must
/// pass them — and must fail a copy with one gradient nudged.
/// </summary>
public sealed class UnseenLayerFileTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"moesharp-unseen-layer-{Guid.NewGuid():N}");

    public UnseenLayerFileTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static TheoryData<string> Configurations() =>
        new() { "softmax-shared-bias-before", "sigmoid-norm-groups-after" };

    [Theory]
    [MemberData(nameof(Configurations))]
    public void AnUnseenLayerFileReplays_AndANudgedGradientFails(string name)
    {
        MoeLayerConfig config =
            name == "softmax-shared-bias-before"
                ? new MoeLayerConfig(
                    Dim: 6,
                    Hidden: 5,
                    Experts: 8,
                    TopK: 3,
                    ScoreFunction.Softmax,
                    RouteNorm: false,
                    RouteScale: 1f,
                    ScoreBeforeExperts: true,
                    NumExpertGroups: 0,
                    NumLimitedGroups: 0,
                    SharedHidden: 4,
                    HasExpertBias: true
                )
                : new MoeLayerConfig(
                    Dim: 5,
                    Hidden: 7,
                    Experts: 8,
                    TopK: 2,
                    ScoreFunction.Sigmoid,
                    RouteNorm: true,
                    RouteScale: 1.5f,
                    ScoreBeforeExperts: false,
                    NumExpertGroups: 4,
                    NumLimitedGroups: 2,
                    SharedHidden: 0,
                    HasExpertBias: false
                );
        var tensors = Build(config, tokens: 11, seed: name.Length);
        string path = Path.Combine(_folder, name + ".safetensors");
        SafetensorsFile.Write(path, tensors, Metadata(config, tokens: 11));

        GoldenLayerReplay.Report report = GoldenLayerReplay.Replay(SafetensorsFile.Read(path));
        Assert.True(report.Mismatch is null, report.Mismatch);
        Assert.True(report.MaxRelativeError < 1e-4, $"{report.MaxRelativeError} ({report.WorstTensor})");

        // One gradient 1% off must be caught.
        var nudged = tensors
            .Select(kv =>
                kv.Key == "grad.experts.w2" ? new KeyValuePair<string, Tensor>(kv.Key, Scaled(kv.Value, 1.01f)) : kv
            )
            .ToList();
        string corrupted = Path.Combine(_folder, name + "-nudged.safetensors");
        SafetensorsFile.Write(corrupted, nudged, Metadata(config, tokens: 11));
        GoldenLayerReplay.Report bad = GoldenLayerReplay.Replay(SafetensorsFile.Read(corrupted));
        Assert.NotNull(bad.Mismatch);
        Assert.Contains("grad.experts.w2", bad.Mismatch);
    }

    /// <summary>Random float32-representable inputs and weights, the reference's outputs and every gradient.</summary>
    private static List<KeyValuePair<string, Tensor>> Build(MoeLayerConfig c, int tokens, int seed)
    {
        var random = new Random(seed);
        double[] Draw(int n, double scale) =>
            Enumerable.Range(0, n).Select(_ => (double)(float)((random.NextDouble() * 2 - 1) * scale)).ToArray();
        var shapes = new List<(string Name, int[] Shape)> { ("x", [tokens, c.Dim]) };
        shapes.AddRange(c.Parameters());
        if (c.HasExpertBias)
            shapes.Add(("router.expert_bias", [c.Experts]));
        var values = shapes.ToDictionary(
            s => s.Name,
            s => Draw(s.Shape.Aggregate(1, (a, b) => a * b), s.Name == "router.expert_bias" ? 0.05 : 1.0)
        );
        double[] gradOut = Draw(tokens * c.Dim, 1.0);

        ReferenceMoeLayer.Result forward = ReferenceMoeLayer.Forward(c, tokens, values);
        var result = new List<KeyValuePair<string, Tensor>>();
        foreach (var (n, shape) in shapes)
            result.Add(new(n, Floats(values[n], shape)));
        result.Add(new("grad_out", Floats(gradOut, [tokens, c.Dim])));
        result.Add(new("out", Floats(forward.Out, [tokens, c.Dim])));
        result.Add(new("top_scores", Floats(forward.TopScores, [tokens, c.TopK])));
        result.Add(new("expert_ids", Tensor.FromArray(forward.ExpertIds, tokens, c.TopK)));
        result.Add(new("tokens_per_expert", Tensor.FromArray(forward.TokensPerExpert, c.Experts)));
        foreach (var (n, shape) in shapes.Where(s => s.Name != "router.expert_bias"))
        {
            double[] grad = FiniteDifference.Gradient(
                () => ReferenceMoeLayer.Loss(c, tokens, values, gradOut),
                values[n]
            );
            result.Add(new("grad." + n, Floats(grad, shape)));
        }
        return result;
    }

    private static Dictionary<string, string> Metadata(MoeLayerConfig c, int tokens)
    {
        string I(int v) => v.ToString(CultureInfo.InvariantCulture);
        return new Dictionary<string, string>
        {
            ["kind"] = "moe_layer",
            ["tokens"] = I(tokens),
            ["dim"] = I(c.Dim),
            ["hidden"] = I(c.Hidden),
            ["experts"] = I(c.Experts),
            ["top_k"] = I(c.TopK),
            ["score_func"] = c.ScoreFunc == ScoreFunction.Softmax ? "softmax" : "sigmoid",
            ["route_norm"] = c.RouteNorm ? "true" : "false",
            ["route_scale"] = c.RouteScale.ToString("R", CultureInfo.InvariantCulture),
            ["score_before_experts"] = c.ScoreBeforeExperts ? "true" : "false",
            ["num_expert_groups"] = I(c.NumExpertGroups),
            ["num_limited_groups"] = I(c.NumLimitedGroups),
            ["shared_hidden"] = I(c.SharedHidden),
            ["reference"] = "float64",
        };
    }

    private static Tensor Floats(double[] values, int[] shape) =>
        Tensor.FromArray(values.Select(v => (float)v).ToArray(), shape);

    private static Tensor Scaled(Tensor t, float factor) =>
        Tensor.FromArray(t.AsSpan<float>().ToArray().Select(v => v * factor).ToArray(), t.ShapeArray());
}
