using MoeSharp.Tensors;
using Xunit.Abstractions;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// Replays every golden file whose metadata says <c>kind = moe_layer</c> through the single-rank
/// composition of router, grouped experts and shared expert.
/// </summary>
public sealed class MoeLayerGoldenTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string> LayerFiles()
    {
        var data = new TheoryData<string>();
        foreach (string path in Directory.GetFiles(GoldenSafetensors.FindGoldenDirectory(), "*.safetensors").Order(StringComparer.Ordinal))
        {
            if (GoldenSafetensors.Read(path).Metadata.GetValueOrDefault("kind") == "moe_layer") data.Add(Path.GetFileName(path));
        }
        return data;
    }

    [Fact]
    public void Golden_folder_has_layer_files() => Assert.NotEmpty(LayerFiles());

    [Theory]
    [MemberData(nameof(LayerFiles))]
    public void Layer_matches_golden(string file)
    {
        var golden = GoldenSafetensors.Read(Path.Combine(GoldenSafetensors.FindGoldenDirectory(), file));
        var config = MoeLayerConfig.FromMetadata(golden.Metadata, golden.Has("router.expert_bias"));
        int tokens = int.Parse(golden.Metadata["tokens"]);
        var layer = new SingleRankMoeLayer(config);
        foreach (var (name, _) in config.Parameters()) golden.F32(name).CopyTo(layer.Parameter(name).AsSpan<float>());
        if (config.HasExpertBias) golden.F32("router.expert_bias").CopyTo(layer.ExpertBias!.AsSpan<float>());

        var x = Tensor.FromArray(golden.F32("x"), tokens, config.Dim);
        var state = layer.Forward(x);
        Assert.Equal(golden.I64("expert_ids"), state.Routing.ExpertIds.AsSpan<long>().ToArray());
        Assert.Equal(golden.I64("tokens_per_expert"), state.Routing.TokensPerExpert.AsSpan<long>().ToArray());
        Check("out", state.Out);
        Check("top_scores", state.Routing.TopScores);

        var grads = layer.Backward(state, Tensor.FromArray(golden.F32("grad_out"), tokens, config.Dim));
        foreach (var (name, grad) in grads) Check("grad." + name, grad);
        Assert.Equal(config.Parameters().Count() + 1, grads.Count);

        void Check(string name, Tensor actual)
        {
            float[] expected = golden.F32(name);
            Assert.Equal(golden.Shape(name), actual.ShapeArray());
            double error = FiniteDifference.RelativeError(actual.AsSpan<float>(), expected.Select(v => (double)v).ToArray());
            output.WriteLine($"{file} {name}: relative error {error:E2}");
            Assert.True(error < Tolerance, $"{file} {name}: relative error {error:E3} ≥ {Tolerance}");
        }
    }
}
