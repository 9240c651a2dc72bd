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
        var all = InitialValues.Weights(Args, allRandom, [(0, Args.NumExperts)])[0]!.ToDictionary();
        var ownRandom = new Random(11);
        var own = InitialValues.Weights(Args, ownRandom, [(first, count)])[0]!;

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

    [Fact]
    public void One_draw_for_every_rank_gives_each_the_values_of_its_own_draw()
    {
        // Four ranks of two experts: the in-process ranks' shared draw against each rank drawing alone.
        (int, int)[] slices = [(0, 2), (2, 2), (4, 2), (6, 2)];
        InitialValues shared = InitialValues.ForRanks(Args, 5, slices);
        for (int r = 0; r < slices.Length; r++)
        {
            InitialValues alone = InitialValues.ForRanks(Args, 5, [slices[r]]);
            var mine = shared.TakeWeights(r);
            var its = alone.TakeWeights(0);
            Assert.Equal(its.Select(kv => kv.Key), mine.Select(kv => kv.Key));
            for (int i = 0; i < its.Count; i++)
                Assert.True(its[i].Value.BitwiseEquals(mine[i].Value), $"rank {r}: {its[i].Key}");
            Assert.Equal(alone.Head, shared.Head);
            Assert.Equal(alone.TeacherA, shared.TeacherA);
            Assert.Equal(alone.TeacherB, shared.TeacherB);
        }
        // Handed over once: the shared draw keeps no rank's weights after it took them.
        Assert.Throws<InvalidOperationException>(() => shared.TakeWeights(0));
    }
}
