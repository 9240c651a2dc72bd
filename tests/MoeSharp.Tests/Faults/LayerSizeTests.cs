using MoeSharp.Experts;
using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// The MoE layer's own tensors are sized before allocation: exact estimates, and refusals with the figures.
/// </summary>
public class LayerSizeTests
{
    [Fact]
    public void ParameterEstimate_CountsGateExpertsSharedExpertAndItsGate()
    {
        var args = new MoeLayerArgs(dim: 16, hidden: 32, numExperts: 8, topK: 2)
        {
            SharedHidden = 24,
            SharedExpertGate = true,
        };
        // gate 8·16 + experts 3·2·32·16 + shared 3·24·16 + shared gate 16, float32.
        long expected = 4L * (8 * 16 + 3 * 2 * 32 * 16 + 3 * 24 * 16 + 16);
        Assert.Equal(expected, MoeLayerMemoryEstimate.ParameterBytesPerRank(args, numLocalExperts: 2));
        Assert.Equal(4 * expected, MoeLayerMemoryEstimate.TrainingBytesPerRank(args, numLocalExperts: 2));
        Assert.Equal(2L * 32 * 16, MoeLayerMemoryEstimate.LargestTensorElements(args, numLocalExperts: 2));

        // A layer built from the same arguments holds exactly the estimated parameter bytes.
        using MoeLayer layer = MoeLayer.CreateLocal(args with { });
        long held = layer.Parameters.Sum(p => p.Value.AsBytes().Length);
        Assert.Equal(MoeLayerMemoryEstimate.ParameterBytesPerRank(args, numLocalExperts: 8), held);
    }

    [Fact]
    public void HugeLayer_IsRefusedBeforeAllocation_WithItsFigures()
    {
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var args = new MoeLayerArgs(dim: 65536, hidden: 65536, numExperts: 4, topK: 2);
        var ex = Assert.Throws<SizeLimitException>(() => MoeLayer.CreateLocal(args));
        Assert.Contains("the MoE layer's weights (E 4, 4 local, D 65536, H 65536", ex.Message);
        Assert.Contains("17179869184 elements", ex.Message);
        Assert.True(
            GC.GetTotalAllocatedBytes(precise: true) - before < 100_000_000,
            "the layer allocated before refusing"
        );
    }

    [Fact]
    public void EstimatesSaturate_InsteadOfWrapping()
    {
        var args = new MoeLayerArgs(dim: int.MaxValue, hidden: int.MaxValue, numExperts: int.MaxValue, topK: 1);
        Assert.Equal(long.MaxValue, MoeLayerMemoryEstimate.ParameterBytesPerRank(args, int.MaxValue));
        Assert.Throws<SizeLimitException>(() =>
            MoeLayerMemoryEstimate.EnsureFits(args, int.MaxValue, onHost: true, rank: 3)
        );
    }

    [Fact]
    public void GroupedExperts_RefuseAWeightTensorNoTensorCanIndex()
    {
        var ex = Assert.Throws<SizeLimitException>(() => new GroupedExperts(3, 40000, 40000));
        Assert.Contains("[3, 40000, 40000]", ex.Message);
    }
}
