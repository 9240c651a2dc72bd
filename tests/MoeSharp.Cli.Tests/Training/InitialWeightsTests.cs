using MoeSharp.Cli.Training;
using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Training;

/// <summary>
/// <c>moe train</c>'s initial weights as one rank keeps them: its experts' values are those of the stacked draw of all
/// experts, whatever slice it owns, and the draws that follow (the head, the teacher) see the same sequence.
/// </summary>
public sealed class InitialWeightsTests
{
    private static readonly MoeLayerArgs Args = new(dim: 6, hidden: 5, numExperts: 8, topK: 2) { SharedHidden = 3 };

    [Theory]
    [InlineData(0, 8)]
    [InlineData(0, 1)]
    [InlineData(2, 2)]
    [InlineData(4, 4)]
    [InlineData(7, 1)]
    public void A_ranks_slice_is_bitwise_the_slice_of_all_experts(int first, int count)
    {
        var allRandom = new Random(11);
        var all = MoeTrainer.InitialWeights(Args, allRandom, 0, Args.NumExperts).ToDictionary();
        var ownRandom = new Random(11);
        var own = MoeTrainer.InitialWeights(Args, ownRandom, first, count);

        Assert.Equal(all.Keys, own.Select(kv => kv.Key));
        foreach (var (name, tensor) in own)
        {
            Tensor whole = all[name];
            if (name is MoeLayerCheckpoint.ExpertsW1 or MoeLayerCheckpoint.ExpertsW2 or MoeLayerCheckpoint.ExpertsW3)
            {
                int matrix = whole.Dim(1) * whole.Dim(2);
                Assert.Equal([count, whole.Dim(1), whole.Dim(2)], tensor.Shape);
                Assert.Equal(
                    whole
                        .AsSpan<float>()
                        .Slice(first * matrix, count * matrix)
                        .ToArray()
                        .Select(BitConverter.SingleToInt32Bits),
                    tensor.AsSpan<float>().ToArray().Select(BitConverter.SingleToInt32Bits)
                );
            }
            else
            {
                Assert.True(whole.BitwiseEquals(tensor), name);
            }
        }
        // The skipped experts were drawn too: the sequence goes on from the same place.
        Assert.Equal(allRandom.NextDouble(), ownRandom.NextDouble());
    }
}
