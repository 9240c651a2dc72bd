using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Routing;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// The layer with FP8 rows on the wire (<see cref="RowWireFormat.Fp8E4M3"/>): output, input gradient and weight
/// gradients bitwise identical on every EP size, SP size, sharding policy, layout and alignment, as with native rows,
/// and not the native rows' output (the rounding is really applied).
/// </summary>
public sealed class Fp8LayerInvarianceTests
{
    [Theory]
    [InlineData(false, 0, false, 23)]
    [InlineData(true, 6, true, 21)]
    [InlineData(false, 5, true, 3)]
    public void Forward_and_backward_are_bitwise_identical_on_every_layout(
        bool before,
        int sharedHidden,
        bool bias,
        int tokens
    )
    {
        // D = 130: two scale blocks per row, the second partial.
        var args = new MoeLayerArgs(dim: 130, hidden: 10, numExperts: 8, topK: 3)
        {
            ScoreFunc = bias ? ScoreFunction.Sigmoid : ScoreFunction.Softmax,
            RouteNorm = bias,
            SharedHidden = sharedHidden,
            LoadBalancing = bias,
        };
        var random = new Random(tokens * 17 + sharedHidden);
        var weights = MoeLayerInvarianceTests.RandomWeights(args, random);
        Tensor x = MoeLayerInvarianceTests.RandomTensor(random, 1.0, tokens, args.Dim);
        Tensor gradOut = MoeLayerInvarianceTests.RandomTensor(random, 1.0, tokens, args.Dim);
        const RowWireFormat Fp8 = RowWireFormat.Fp8E4M3;

        var single = LayerWorldRunner.Run(args, before, weights, x, gradOut, LayerLayout.Single, wire: Fp8);
        var native = LayerWorldRunner.Run(args, before, weights, x, gradOut, LayerLayout.Single);
        Assert.False(single.Out.BitwiseEquals(native.Out), "FP8 rows gave the native rows' output");
        var layouts = LayerLayout
            .Variants(args.NumExperts)
            .Append(new LayerLayout(4, 2, SequenceLayout.Sharded, SpShardingPolicy.Balanced, Alignment: 16))
            .Append(new LayerLayout(8, 4, SequenceLayout.Replicated, SpShardingPolicy.PadToMultiple, Alignment: 4));
        foreach (LayerLayout layout in layouts)
        {
            var r = LayerWorldRunner.Run(args, before, weights, x, gradOut, layout, wire: Fp8);
            Assert.True(single.Out.BitwiseEquals(r.Out), $"out differs on {layout}");
            foreach (var (name, grad) in single.Grads)
            {
                Assert.True(
                    grad.BitwiseEquals(r.Grads[name]),
                    $"grad.{name} differs on {layout}: {TensorComparison.FirstBitwiseMismatch(name, grad, r.Grads[name])}"
                );
            }
        }
    }
}
