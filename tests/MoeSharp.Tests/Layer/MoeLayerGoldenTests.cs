using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Testing;
using MoeSharp.Verification;
using Xunit.Abstractions;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// Replays every golden file whose metadata says <c>kind = moe_layer</c> (found by listing the folder)
/// through the single-rank composition of the pieces and through <see cref="MoeLayer"/> on one rank and on
/// every multi-rank layout.
/// </summary>
public sealed class MoeLayerGoldenTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string> LayerFiles()
    {
        var data = new TheoryData<string>();
        foreach (string path in GoldenFiles.SafetensorsFiles())
        {
            if (SafetensorsFile.Read(path).Metadata.GetValueOrDefault("kind") == "moe_layer")
                data.Add(Path.GetFileName(path));
        }
        return data;
    }

    [Fact]
    public void Golden_folder_has_layer_files() => Assert.NotEmpty(LayerFiles());

    [Theory]
    [MemberData(nameof(LayerFiles))]
    public void Pieces_match_golden(string file)
    {
        var golden = SafetensorsFile.Read(GoldenFiles.PathOf(file));
        var config = MoeLayerConfig.FromMetadata(golden.Metadata, golden.Contains("router.expert_bias"));
        var layer = new SingleRankMoeLayer(config);
        foreach (var (name, _) in config.Parameters())
            golden[name].AsSpan<float>().CopyTo(layer.Parameter(name).AsSpan<float>());
        if (config.HasExpertBias)
            golden["router.expert_bias"].AsSpan<float>().CopyTo(layer.ExpertBias!.AsSpan<float>());

        var state = layer.Forward(golden["x"]);
        Assert.Equal(golden["expert_ids"].AsSpan<long>().ToArray(), state.Routing.ExpertIds.AsSpan<long>().ToArray());
        Assert.Equal(
            golden["tokens_per_expert"].AsSpan<long>().ToArray(),
            state.Routing.TokensPerExpert.AsSpan<long>().ToArray()
        );
        Check("out", state.Out);
        Check("top_scores", state.Routing.TopScores);

        var grads = layer.Backward(state, golden["grad_out"]);
        foreach (var (name, grad) in grads)
            Check("grad." + name, grad);
        Assert.Equal(config.Parameters().Count() + 1, grads.Count);

        void Check(string name, Tensor actual)
        {
            Tensor expected = golden[name];
            Assert.Equal(expected.ShapeArray(), actual.ShapeArray());
            double error = TensorComparison.RelativeError(expected, actual);
            output.WriteLine($"{file} {name}: relative error {error:E2}");
            Assert.True(error < Tolerance, $"{file} {name}: relative error {error:E3} ≥ {Tolerance}");
        }
    }

    [Theory]
    [MemberData(nameof(LayerFiles))]
    public void MoeLayer_matches_golden_on_one_rank_and_bitwise_on_every_layout(string file)
    {
        var golden = SafetensorsFile.Read(GoldenFiles.PathOf(file));
        GoldenLayerReplay.Report report = GoldenLayerReplay.Replay(golden);
        output.WriteLine(
            $"{file}: max relative error {report.MaxRelativeError:E2} ({report.WorstTensor}), {report.Layouts} layouts, weight grads bitwise: {report.WeightGradsBitwise}"
        );
        Assert.Null(report.Mismatch);
        Assert.True(report.Layouts >= 6, $"only {report.Layouts} layouts checked");
        Assert.True(report.WeightGradsBitwise);
    }
}
