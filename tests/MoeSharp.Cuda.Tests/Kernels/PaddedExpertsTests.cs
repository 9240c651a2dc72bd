using MoeSharp.Compute;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// The padded experts (<see cref="IPaddedExpertKernels"/>, the default bfloat16 path) compute the same function as
/// the product-by-product bfloat16 path: the same products of the same bfloat16-rounded operands (x, the weights,
/// the activation, dy, the gate and up gradients). On ILGPU's CPU accelerator both sum in the same order, so the
/// layer's output and gradients agree exactly (zero padding rows add zeros); on CUDA within the products' rounding.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class PaddedExpertsTests(CpuBackendFixture fixture)
{
    /// <summary>D = 256 and H = 128 take the tiled pad, unpad and SwiGLU kernels (rows of whole 128-word tiles),
    /// D = 40 and H = 48 the plain ones.</summary>
    [Theory]
    [InlineData(40, 48, 8, 512)]
    [InlineData(256, 128, 4, 128)]
    public void PaddedLayer_OnTheCpuAccelerator_IsTheProductByProductLayer(
        int dim,
        int hidden,
        int experts,
        int tokens
    ) => AssertSameLayer(fixture.Backend, dim, hidden, experts, tokens, exact: true);

    [CudaFact]
    public void PaddedLayer_OnCuda_TracksTheProductByProductLayer()
    {
        using IlgpuBackend cuda = IlgpuBackend.CreateCuda(0);
        AssertSameLayer(cuda, 256, 128, 8, 512, exact: false);
        AssertSameLayer(cuda, 40, 48, 8, 512, exact: false);
    }

    /// <summary>
    /// The dispatch writing the padded experts' bfloat16 rows itself (and combine, the combine backward and the
    /// dispatch backward reading and writing the experts' padded rows) is the layer whose experts pad and unpad the
    /// rows in passes of their own, bit for bit: scores after or before the experts, with alignment padding, tiled
    /// (D = 256) and plain (D = 40) kernels.
    /// </summary>
    [Theory]
    [InlineData(40, 48, 8, 512, false, 1)]
    [InlineData(256, 128, 4, 128, false, 1)]
    [InlineData(256, 128, 4, 128, true, 4)]
    [InlineData(40, 48, 8, 512, true, 8)]
    public void PlacedRows_AreThePaddedLayerWithItsLayoutPasses(
        int dim,
        int hidden,
        int experts,
        int tokens,
        bool scoreBefore,
        int alignment
    ) => AssertPlacedIsPadded(fixture.Backend, dim, hidden, experts, tokens, scoreBefore, alignment);

    /// <summary>On CUDA too the two layers run the same cuBLAS calls on the same operands, so the same bits.</summary>
    [CudaFact]
    public void PlacedRows_OnCuda_AreThePaddedLayerWithItsLayoutPasses()
    {
        using IlgpuBackend cuda = IlgpuBackend.CreateCuda(0);
        AssertPlacedIsPadded(cuda, 256, 128, 8, 512, scoreBefore: false, alignment: 1);
        AssertPlacedIsPadded(cuda, 256, 128, 8, 512, scoreBefore: true, alignment: 4);
        AssertPlacedIsPadded(cuda, 40, 48, 8, 512, scoreBefore: false, alignment: 8);
    }

    private static void AssertPlacedIsPadded(
        IlgpuBackend backend,
        int dim,
        int hidden,
        int experts,
        int tokens,
        bool scoreBefore,
        int alignment
    )
    {
        int topK = 2;
        var args = new MoeLayerArgs(dim, hidden, experts, topK);
        List<KeyValuePair<string, Tensor>> weights = Weights(new Random(7), dim, hidden, experts);
        var r = new Random(11);
        Tensor x = Random(r, 1, tokens, dim),
            gradOut = Random(r, 1, tokens, dim);
        var config = new TokenDispatcherConfig(experts, topK)
        {
            ScoreBeforeExperts = scoreBefore,
            ExpertAlignment = alignment,
        };
        using var placedKernels = new IlgpuLayerKernels(backend, true, BFloat16GemmPath.PaddedBatched);
        using var paddingKernels = new IlgpuLayerKernels(backend, true, BFloat16GemmPath.PaddedBatched);
        var placedTimes = new ProfilingLayerKernels(placedKernels);
        var paddingTimes = new ProfilingLayerKernels(paddingKernels);
        var placed = new MoeLayer(args, new LocalTokenDispatcher(config, backend.Kernels), null, placedTimes);
        var padding = new MoeLayer(args, new LocalTokenDispatcher(config, backend.Kernels), null, paddingTimes);
        padding.Experts.PlaceRoutedRows = false;
        MoeLayerCheckpoint.Load(placed, weights);
        MoeLayerCheckpoint.Load(padding, weights);

        Tensor a = placed.Forward(backend.Kernels.Device.ToDevice(x));
        Tensor b = padding.Forward(backend.Kernels.Device.ToDevice(x));
        MoeLayerGradients ga = placed.Backward(backend.Kernels.Device.ToDevice(gradOut)),
            gb = padding.Backward(backend.Kernels.Device.ToDevice(gradOut));

        Assert.Equal(2, placedTimes.Totals[nameof(IPaddedExpertKernels.PlaceTokenRows)].Calls);
        Assert.False(placedTimes.Totals.ContainsKey(nameof(IPaddedExpertKernels.PadRows)), "placed rows padded again");
        Assert.False(placedTimes.Totals.ContainsKey(nameof(IPaddedExpertKernels.UnpadRows)), "padded rows unpadded");
        Assert.Equal(2, paddingTimes.Totals[nameof(IPaddedExpertKernels.PadRows)].Calls);
        Assert.False(paddingTimes.Totals.ContainsKey(nameof(IPaddedExpertKernels.PlaceTokenRows)), "placed anyway");
        Same(b, a, "output", exact: true);
        Same(gb.GradX, ga.GradX, "grad x", exact: true);
        Same(gb.GradW1, ga.GradW1, "grad w1", exact: true);
        Same(gb.GradW2, ga.GradW2, "grad w2", exact: true);
        Same(gb.GradW3, ga.GradW3, "grad w3", exact: true);
        Same(gb.GradGateWeight, ga.GradGateWeight, "grad gate", exact: true);
        placed.Dispose();
        padding.Dispose();
    }

    [Fact]
    public void Plan_PadsBalancedGroups_AndDeclinesUnevenOnes()
    {
        using var kernels = new IlgpuLayerKernels(
            fixture.Backend,
            bfloat16Products: true,
            BFloat16GemmPath.PaddedBatched
        );
        Assert.Same(kernels, kernels.PaddedExperts);
        PaddedGroups layout = kernels.Plan([16, 13, 16, 16, 16, 16, 16, 0])!;
        Assert.Equal(16, layout.Capacity);
        Assert.Equal(128, layout.PaddedRows);
        Assert.Equal(
            [0, 16, 29, 45, 61, 77, 93, 109, 16, 13, 16, 16, 16, 16, 16, 0],
            layout.Table.ToHost().AsSpan<int>().ToArray()
        );
        fixture.Backend.Allocator.Return(layout.Table);
        Assert.Null(kernels.Plan([40, 2, 3, 1])); // 4·40 rows for 46: product by product instead
        Assert.Null(kernels.Plan([0, 0]));
        using var each = new IlgpuLayerKernels(fixture.Backend, bfloat16Products: true, BFloat16GemmPath.PerGroup);
        Assert.Null(each.PaddedExperts);
        Assert.Null(fixture.Backend.Layer.PaddedExperts); // float32 products
    }

    private static Tensor Random(Random r, double scale, params int[] shape) =>
        Tensor.FromArray(
            Enumerable
                .Range(0, shape.Aggregate(1, (a, b) => a * b))
                .Select(_ => (float)((r.NextDouble() * 2 - 1) * scale))
                .ToArray(),
            shape
        );

    /// <summary>A small gate keeps the routing near uniform, so the groups fit the padded layout.</summary>
    private static List<KeyValuePair<string, Tensor>> Weights(Random r, int dim, int hidden, int experts) =>
        [
            new(MoeLayerCheckpoint.GateWeight, Random(r, 0.01, experts, dim)),
            new(MoeLayerCheckpoint.ExpertsW1, Random(r, 0.2, experts, hidden, dim)),
            new(MoeLayerCheckpoint.ExpertsW2, Random(r, 0.2, experts, dim, hidden)),
            new(MoeLayerCheckpoint.ExpertsW3, Random(r, 0.2, experts, hidden, dim)),
        ];

    private static void AssertSameLayer(IlgpuBackend backend, int dim, int hidden, int experts, int tokens, bool exact)
    {
        int topK = 2;
        var args = new MoeLayerArgs(dim, hidden, experts, topK);
        var r = new Random(5);
        Tensor Random(double scale, params int[] shape) =>
            Tensor.FromArray(
                Enumerable
                    .Range(0, shape.Aggregate(1, (a, b) => a * b))
                    .Select(_ => (float)((r.NextDouble() * 2 - 1) * scale))
                    .ToArray(),
                shape
            );
        // A small gate keeps the routing near uniform, so the groups fit the padded layout.
        var weights = new List<KeyValuePair<string, Tensor>>
        {
            new(MoeLayerCheckpoint.GateWeight, Random(0.01, experts, dim)),
            new(MoeLayerCheckpoint.ExpertsW1, Random(0.2, experts, hidden, dim)),
            new(MoeLayerCheckpoint.ExpertsW2, Random(0.2, experts, dim, hidden)),
            new(MoeLayerCheckpoint.ExpertsW3, Random(0.2, experts, hidden, dim)),
        };
        Tensor x = Random(1, tokens, dim),
            gradOut = Random(1, tokens, dim);
        var config = new TokenDispatcherConfig(experts, topK);

        using var paddedKernels = new IlgpuLayerKernels(backend, true, BFloat16GemmPath.PaddedBatched);
        using var eachKernels = new IlgpuLayerKernels(backend, true, BFloat16GemmPath.PerGroup);
        var timed = new ProfilingLayerKernels(paddedKernels);
        var padded = new MoeLayer(args, new LocalTokenDispatcher(config, backend.Kernels), null, timed);
        var each = new MoeLayer(args, new LocalTokenDispatcher(config, backend.Kernels), null, eachKernels);
        MoeLayerCheckpoint.Load(padded, weights);
        MoeLayerCheckpoint.Load(each, weights);

        Tensor a = padded.Forward(backend.Kernels.Device.ToDevice(x));
        Tensor b = each.Forward(backend.Kernels.Device.ToDevice(x));
        Assert.True(timed.Totals.ContainsKey(nameof(IPaddedExpertKernels.BatchedMatMulTransposeB)), "not padded");
        Assert.False(timed.Totals.ContainsKey(nameof(IGemmKernels.GroupedMatMulTransposeB)), "product by product");
        Same(b, a, "output", exact);
        MoeLayerGradients ga = padded.Backward(backend.Kernels.Device.ToDevice(gradOut)),
            gb = each.Backward(backend.Kernels.Device.ToDevice(gradOut));
        Same(gb.GradX, ga.GradX, "grad x", exact);
        Same(gb.GradW1, ga.GradW1, "grad w1", exact);
        Same(gb.GradW2, ga.GradW2, "grad w2", exact);
        Same(gb.GradW3, ga.GradW3, "grad w3", exact);
        Same(gb.GradGateWeight, ga.GradGateWeight, "grad gate", exact);
    }

    private static void Same(Tensor expected, Tensor actual, string what, bool exact)
    {
        float[] e = expected.ToHost().AsSpan<float>().ToArray(),
            a = actual.ToHost().AsSpan<float>().ToArray();
        Assert.Equal(e.Length, a.Length);
        double num = 0,
            den = 0;
        for (int i = 0; i < e.Length; i++)
        {
            if (exact)
                Assert.True(e[i] == a[i], $"{what} element {i}: product by product {e[i]}, padded {a[i]}");
            num += (e[i] - a[i]) * (double)(e[i] - a[i]);
            den += e[i] * (double)e[i];
        }
        Assert.True(den > 0, $"{what} is all zeros");
        double relative = Math.Sqrt(num / den);
        // cuBLAS blocks each product differently per path; the activations' bfloat16 rounding can then flip.
        Assert.True(relative < 1e-2, $"{what}: relative error {relative:E2}");
    }
}
