using MoeSharp.Experts;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Layer;

public sealed class GroupedExpertsTests
{
    private static GroupedExperts RandomExperts(int e, int d, int h, int seed)
    {
        var experts = new GroupedExperts(e, d, h);
        var random = new Random(seed);
        foreach (Tensor w in new[] { experts.W1, experts.W2, experts.W3 })
        {
            Span<float> s = w.AsSpan<float>();
            for (int i = 0; i < s.Length; i++)
                s[i] = (float)(random.NextDouble() - 0.5);
        }
        return experts;
    }

    [Fact]
    public void Zero_rows_and_experts_without_rows_work()
    {
        GroupedExperts experts = RandomExperts(3, 4, 5, 1);
        SwiGluForwardResult empty = experts.Forward(Tensor.Zeros(DType.Float32, 0, 4), [0L, 0, 0]);
        Assert.Equal([0, 4], empty.Output.ShapeArray());
        SwiGluGradients g = experts.Backward(empty, Tensor.Zeros(DType.Float32, 0, 4));
        Assert.All(g.GradW1.AsSpan<float>().ToArray(), v => Assert.Equal(0f, v));

        var x = Tensor.FromArray(Enumerable.Range(0, 12).Select(i => i * 0.1f).ToArray(), 3, 4);
        SwiGluForwardResult f = experts.Forward(x, [0L, 3, 0]);
        g = experts.Backward(f, Tensor.FromArray(Enumerable.Repeat(1f, 12).ToArray(), 3, 4));
        Assert.All(g.GradW2.Row<float>(0).ToArray(), v => Assert.Equal(0f, v));
        Assert.Contains(g.GradW2.Row<float>(1).ToArray(), v => v != 0f);
    }

    [Fact]
    public void A_row_output_does_not_depend_on_the_other_rows()
    {
        GroupedExperts experts = RandomExperts(2, 24, 40, 2);
        var random = new Random(5);
        var big = Tensor.FromArray(
            Enumerable.Range(0, 300 * 24).Select(_ => (float)random.NextDouble()).ToArray(),
            300,
            24
        );
        SwiGluForwardResult batch = experts.Forward(big, [120L, 180]);
        var one = Tensor.FromArray(big.Row<float>(200).ToArray(), 1, 24);
        SwiGluForwardResult alone = experts.Forward(one, [0L, 1]);
        Assert.True(alone.Output.Row<float>(0).SequenceEqual(batch.Output.Row<float>(200)));
    }

    [Fact]
    public void Bad_counts_are_rejected()
    {
        GroupedExperts experts = RandomExperts(2, 4, 5, 3);
        var x = Tensor.Zeros(DType.Float32, 3, 4);
        Assert.Equal(
            "tokensPerLocalExpert",
            Assert.Throws<ArgumentException>(() => experts.Forward(x, [1L, 1])).ParamName
        );
        Assert.Equal(
            "tokensPerLocalExpert",
            Assert.Throws<ArgumentOutOfRangeException>(() => experts.Forward(x, [4L, -1])).ParamName
        );
        Assert.Equal(
            "tokensPerLocalExpert",
            Assert.Throws<ArgumentException>(() => experts.Forward(x, [3L])).ParamName
        );
    }
}
