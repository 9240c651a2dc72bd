using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Routing;

public sealed class ExpertLoadBalancerTests
{
    [Fact]
    public void Bias_moves_toward_underused_experts_and_counts_reset()
    {
        var balancer = new ExpertLoadBalancer(4);
        balancer.Accumulate(Tensor.FromArray([10L, 2, 4, 4], 4));
        balancer.Accumulate(Tensor.FromArray([2L, 2, 0, 4], 4));
        // Totals 12, 4, 4, 8; mean 7: signs -1, +1, +1, -1; delta mean 0.
        balancer.UpdateExpertBias(0.1f);
        Assert.Equal([-0.1f, 0.1f, 0.1f, -0.1f], balancer.ExpertBias.AsSpan<float>().ToArray());
        Assert.All(balancer.TokensPerExpert.AsSpan<long>().ToArray(), c => Assert.Equal(0L, c));
    }

    [Fact]
    public void Summed_counts_seam_centres_the_delta()
    {
        var balancer = new ExpertLoadBalancer(3);
        // mean 5: signs -1, +1, 0 for counts 9, 1, 5 → delta (-c, c, 0), already centred.
        balancer.UpdateExpertBias(1f, [9L, 1, 5]);
        Assert.Equal([-1f, 1f, 0f], balancer.ExpertBias.AsSpan<float>().ToArray());
        // counts 9, 3, 3 (mean 5): signs -1, +1, +1 → mean 1/3 subtracted.
        balancer.UpdateExpertBias(1f, [9L, 3, 3]);
        float[] b = balancer.ExpertBias.AsSpan<float>().ToArray();
        Assert.Equal(-1f - (4f / 3f), b[0], 5);
        Assert.Equal(1f + (2f / 3f), b[1], 5);
        Assert.Equal(2f / 3f, b[2], 5);
        Assert.Equal(
            "summedTokensPerExpert",
            Assert.Throws<ArgumentException>(() => balancer.UpdateExpertBias(1f, [1L])).ParamName
        );
    }
}
