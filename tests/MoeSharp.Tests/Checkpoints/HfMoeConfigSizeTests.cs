using System.Text.Json.Nodes;
using MoeSharp.Checkpoints;

namespace MoeSharp.Tests.Checkpoints;

/// <summary>
/// A <c>config.json</c> whose layer sizes are out of range, or too large for any layer, is refused in one line naming
/// the file, the family's key and the value, before anything is allocated for it; and a config whose E contradicts
/// the checkpoint's router gate is refused at the gate, without first listing every expert's tensors.
/// </summary>
public sealed class HfMoeConfigSizeTests
{
    private const string Source = "ckpt/config.json";

    /// <summary>
    /// The checked-in Qwen3-MoE config (E 8, D 32, H 16, K 2) with <paramref name="changes"/> applied.
    /// </summary>
    private static string Qwen3Config(string changes)
    {
        string path = Path.Combine(CheckpointData.Folder("qwen3_moe"), "config.json");
        JsonObject config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        foreach (var (key, value) in JsonNode.Parse(changes)!.AsObject())
            config[key] = value?.DeepClone();
        return config.ToJsonString();
    }

    [Theory]
    [InlineData(20_000_000)]
    [InlineData(int.MaxValue)]
    public void A_huge_num_experts_is_refused_naming_the_key_without_allocating(int experts)
    {
        string json = Qwen3Config($"{{\"num_experts\": {experts}}}");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => HfMoeConfig.Parse(json, Source));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal($"{Source}: 'num_experts' is {experts}; MoeSharp reads at most 1048576 routed experts", e.Message);
        Assert.True(allocated < 1_000_000, $"{allocated} bytes allocated before the refusal");
    }

    [Fact]
    public void A_gate_that_contradicts_E_is_refused_before_every_experts_tensor_is_listed()
    {
        // The largest E a config may name (HfMoeConfig.MaxExperts); the checkpoint's gate is [8, 32]. Listing the
        // 3 × 2^20 expert tensors first allocated 912 MB before the gate's refusal.
        HfMoeConfig config = HfMoeConfig.Parse(Qwen3Config("{\"num_experts\": 1048576}"), Source);
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(CheckpointData.Folder("qwen3_moe"));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => HfMoeLayerLoader.CheckTensors(checkpoint, config, 1));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.EndsWith(
            "layer 1: tensor 'model.layers.1.mlp.gate.weight' has shape [8, 32] but the layer expects [1048576, 32]",
            e.Message
        );
        Assert.True(allocated < 10_000_000, $"{allocated} bytes allocated before the refusal");
    }

    [Theory]
    [InlineData("{\"hidden_size\": 0}", "'hidden_size' is 0; it must be at least 1")]
    [InlineData("{\"moe_intermediate_size\": 0}", "'moe_intermediate_size' is 0; it must be at least 1")]
    [InlineData("{\"num_experts\": 0}", "'num_experts' is 0; it must be at least 1")]
    [InlineData("{\"num_experts_per_tok\": 9}", "'num_experts_per_tok' is 9; it must be in [1, 'num_experts' = 8]")]
    [InlineData("{\"num_experts_per_tok\": 0}", "'num_experts_per_tok' is 0; it must be in [1, 'num_experts' = 8]")]
    [InlineData(
        "{\"moe_intermediate_size\": 100000, \"hidden_size\": 100000}",
        "'moe_intermediate_size' × 'hidden_size' is 10000000000 elements for an expert's [H, D], "
            + "more than the 2147483591 a tensor can hold"
    )]
    [InlineData(
        "{\"num_experts\": 1048576, \"hidden_size\": 4096}",
        "'num_experts' × 'hidden_size' is 4294967296 elements for the router gate [E, D], "
            + "more than the 2147483591 a tensor can hold"
    )]
    [InlineData(
        "{\"model_type\": \"qwen2_moe\", \"shared_expert_intermediate_size\": 100000000}",
        "'shared_expert_intermediate_size' × 'hidden_size' is 3200000000 elements for the shared expert's [Hs, D], "
            + "more than the 2147483591 a tensor can hold"
    )]
    [InlineData(
        "{\"model_type\": \"mixtral\", \"num_local_experts\": 0}",
        "'num_local_experts' is 0; it must be at least 1"
    )]
    [InlineData(
        "{\"model_type\": \"deepseek_v3\", \"n_routed_experts\": 8, \"n_group\": 3}",
        "'n_group' is 3; it must divide 'n_routed_experts' = 8 into groups of at least two"
    )]
    [InlineData(
        "{\"model_type\": \"deepseek_v3\", \"n_routed_experts\": 8, \"n_group\": 4, \"topk_group\": 5}",
        "'topk_group' is 5; it must be in [1, 'n_group' = 4]"
    )]
    [InlineData(
        "{\"model_type\": \"deepseek_v3\", \"n_routed_experts\": 8, \"n_group\": 4, \"topk_group\": 1, "
            + "\"num_experts_per_tok\": 3}",
        "'topk_group' = 1 groups of 2 experts leave 2 eligible, fewer than 'num_experts_per_tok' = 3"
    )]
    public void An_out_of_range_size_names_the_file_and_the_key(string changes, string message)
    {
        var e = Assert.Throws<InvalidDataException>(() => HfMoeConfig.Parse(Qwen3Config(changes), Source));
        Assert.Equal($"{Source}: {message}", e.Message);
    }

    [Fact]
    public void The_checked_in_configs_still_read()
    {
        foreach (string family in new[] { "qwen2_moe", "qwen3_moe", "mixtral", "deepseek_v3" })
            Assert.NotNull(HfMoeConfig.Read(CheckpointData.Folder(family)));
    }
}
