using MoeSharp.Checkpoints;
using MoeSharp.Routing;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Xunit.Abstractions;

namespace MoeSharp.Tests.Checkpoints;

/// <summary>
/// Each family's small checkpoint (published layout, names, dtypes and shards) through <see cref="HfMoeLayerLoader"/>
/// and the layer: within 1e-4 of the float64 reference that follows the family's transformers code, and bitwise the
/// same on every multi-rank layout.
/// </summary>
public sealed class HfFamilyCheckpointTests(ITestOutputHelper output)
{
    public static TheoryData<string, int> Cases() =>
        new()
        {
            { "qwen2_moe", 1 },
            { "qwen3_moe", 1 },
            { "mixtral", 0 },
            { "deepseek_v3", 2 },
            // Kept groups with fewer than K positive biased scores: transformers' 0.0 masking picks differently.
            { "deepseek_v3_negative_bias", 1 },
        };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Layer_matches_the_float64_reference_and_is_bitwise_the_same_on_every_layout(string family, int layer)
    {
        string folder = CheckpointData.Folder(family);
        HfMoeConfig config = HfMoeConfig.Read(folder);
        Tensor x = CheckpointData.Input(family);
        var single = CheckpointLayerRunner.Run(folder, config, layer, x, LayerLayout.Single);
        double error = CheckpointData.RelativeError(single.Y, CheckpointData.Expected(family, layer));
        output.WriteLine($"{family} layer {layer}: relative error {error:E2} vs the float64 reference");
        Assert.True(error < 1e-4, $"{family}: relative error {error:E3}");
        Assert.Equal(x.Rows * config.Args.TopK, single.TokensPerExpert.Sum());

        foreach (LayerLayout layout in LayerLayout.Variants(config.Args.NumExperts))
        {
            var run = CheckpointLayerRunner.Run(folder, config, layer, x, layout, timeout: TimeSpan.FromSeconds(60));
            Assert.True(run.Y.BitwiseEquals(single.Y), $"{family} on {layout} differs from one rank");
            Assert.Equal(single.TokensPerExpert, run.TokensPerExpert);
        }
    }

    [Fact]
    public void Configs_map_each_family_as_its_modeling_code_routes()
    {
        HfMoeConfig qwen2 = HfMoeConfig.Read(CheckpointData.Folder("qwen2_moe"));
        Assert.Equal(HfMoeFamily.Qwen2Moe, qwen2.Family);
        Assert.Equal(
            (ScoreFunction.Softmax, false, 24, true),
            (qwen2.Args.ScoreFunc, qwen2.Args.RouteNorm, qwen2.Args.SharedHidden, qwen2.Args.SharedExpertGate)
        );
        Assert.False(qwen2.IsMoeLayer(0)); // mlp_only_layers
        Assert.True(qwen2.IsMoeLayer(1));
        Assert.Equal("model.layers.1.mlp.shared_expert_gate.weight", qwen2.SharedGateName(1));

        HfMoeConfig qwen3 = HfMoeConfig.Read(CheckpointData.Folder("qwen3_moe"));
        Assert.Equal(
            (ScoreFunction.Softmax, true, 0),
            (qwen3.Args.ScoreFunc, qwen3.Args.RouteNorm, qwen3.Args.SharedHidden)
        );

        HfMoeConfig mixtral = HfMoeConfig.Read(CheckpointData.Folder("mixtral"));
        Assert.True(mixtral.Args.RouteNorm);
        Assert.Equal(
            (
                "model.layers.0.block_sparse_moe.experts.3.w1.weight",
                "model.layers.0.block_sparse_moe.experts.3.w3.weight",
                "model.layers.0.block_sparse_moe.experts.3.w2.weight"
            ),
            mixtral.ExpertNames(0, 3)
        );

        HfMoeConfig deepseek = HfMoeConfig.Read(CheckpointData.Folder("deepseek_v3"));
        var a = deepseek.Args;
        Assert.Equal(
            (ScoreFunction.Sigmoid, true, 2.5f, 4, 2, 24, true),
            (
                a.ScoreFunc,
                a.RouteNorm,
                a.RouteScale,
                a.NumExpertGroups,
                a.NumLimitedGroups,
                a.SharedHidden,
                a.LoadBalancing
            )
        );
        Assert.True(a.ZeroDiscardedGroups); // masked_fill(~score_mask, 0.0), not torchtitan's exclusion
        Assert.False(deepseek.IsMoeLayer(0)); // first_k_dense_replace
        Assert.Equal(new[] { 16, 16 }, deepseek.WeightBlockSize!);
        Assert.Equal("model.layers.2.mlp.shared_experts.down_proj.weight", deepseek.SharedNames(2)!.Value.Down);
    }

    [Theory]
    [InlineData("qwen2_moe", 0, "mlp_only_layers")]
    [InlineData("deepseek_v3", 0, "first_k_dense_replace")]
    [InlineData("deepseek_v3", 3, "does not exist")]
    public void A_dense_or_absent_layer_is_one_clear_error(string family, int layer, string why)
    {
        HfMoeConfig config = HfMoeConfig.Read(CheckpointData.Folder(family));
        var error = Assert.Throws<InvalidDataException>(() => HfMoeLayerLoader.CheckMoeLayer(config, layer));
        Assert.Contains($"layer {layer}", error.Message);
        Assert.Contains(why, error.Message);
    }

    [Fact]
    public void A_missing_tensor_names_the_layer_and_the_tensor_and_changes_nothing()
    {
        string source = CheckpointData.Folder("qwen3_moe");
        string folder = Directory.CreateTempSubdirectory("moe-missing-").FullName;
        try
        {
            File.Copy(Path.Combine(source, "config.json"), Path.Combine(folder, "config.json"));
            const string dropped = "model.layers.1.mlp.experts.5.up_proj.weight";
            SafetensorsContent all = SafetensorsFile.Read(Path.Combine(source, "model.safetensors"));
            SafetensorsFile.Write(Path.Combine(folder, "model.safetensors"), all.Where(kv => kv.Key != dropped));
            HfMoeConfig config = HfMoeConfig.Read(folder);
            var layer = MoeSharp.Layer.MoeLayer.CreateLocal(config.Args);
            using var checkpoint = SafetensorsCheckpoint.Open(folder);
            var error = Assert.Throws<InvalidDataException>(() => HfMoeLayerLoader.Load(layer, checkpoint, config, 1));
            Assert.Contains("layer 1", error.Message);
            Assert.Contains($"'{dropped}'", error.Message);
            Assert.All(layer.Router.GateWeight.AsSpan<float>().ToArray(), v => Assert.Equal(0f, v));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
