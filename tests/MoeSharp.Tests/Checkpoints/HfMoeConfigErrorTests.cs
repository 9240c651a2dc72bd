using MoeSharp.Checkpoints;

namespace MoeSharp.Tests.Checkpoints;

/// <summary>
/// A <c>config.json</c> whose values are each in range but combine to a size MoeSharp cannot hold is one clear
/// <see cref="InvalidDataException"/> naming the file and the keys, not a silently wrapped size.
/// </summary>
public sealed class HfMoeConfigErrorTests
{
    private const string Source = "ckpt/config.json";

    private static string DeepseekConfig(long moeIntermediate, long sharedExperts) =>
        "{\"model_type\":\"deepseek_v3\",\"hidden_size\":16,\"num_hidden_layers\":2,\"num_experts_per_tok\":2,"
        + $"\"n_routed_experts\":8,\"moe_intermediate_size\":{moeIntermediate},\"n_shared_experts\":{sharedExperts}}}";

    [Theory]
    [InlineData(65536, 65536, 4294967296)] // wrapped to 0: the shared expert vanished
    [InlineData(1073741825, 4, 4294967300)] // wrapped to 4
    [InlineData(1073741824, 2, 2147483648)] // wrapped to int.MinValue
    public void A_shared_expert_size_over_int_is_an_error_naming_both_keys(int hidden, int shared, long product)
    {
        var e = Assert.Throws<InvalidDataException>(() => HfMoeConfig.Parse(DeepseekConfig(hidden, shared), Source));
        Assert.StartsWith(Source + ": ", e.Message);
        Assert.Contains($"'moe_intermediate_size' ({hidden})", e.Message);
        Assert.Contains($"'n_shared_experts' ({shared})", e.Message);
        Assert.Contains(product.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
    }

    [Theory]
    [InlineData(60000000, 2, 120000000)] // Hs · D (16) still fits one tensor
    [InlineData(24, 1, 24)]
    [InlineData(24, 0, 0)]
    public void A_shared_expert_size_that_fits_is_the_product(int hidden, int shared, int product) =>
        Assert.Equal(product, HfMoeConfig.Parse(DeepseekConfig(hidden, shared), Source).Args.SharedHidden);
}
