using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// <see cref="Cuda.Kernels.IlgpuLayerKernels"/> on ILGPU's CPU accelerator against <see cref="HostLayerKernels"/>: the
/// element-wise kernels, top-k (node-limited too), the top-score backward and AdamW bitwise (the CPU accelerator
/// runs .NET arithmetic without contraction); the strided product, which sums without fused multiply-adds where the
/// host GEMM fuses them, within float32 tolerance.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class LayerKernelTests(CpuBackendFixture fixture)
{
    private readonly IlgpuBackend _b = fixture.Backend;
    private readonly HostLayerKernels _host = new();

    private static float[] Random(Random r, int n, double scale = 4) =>
        Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)).ToArray();

    private Tensor Up(float[] values, params int[] shape) =>
        _b.Kernels.Device.ToDevice(Tensor.FromArray(values, shape));

    private static float[] Floats(Tensor t) => t.ToHost().AsSpan<float>().ToArray();

    [Fact]
    public void Products_AtOffsets_MatchTheHostWithinTolerance()
    {
        Gen.Select(Gen.Int[0, 9], Gen.Int[1, 9], Gen.Int[0, 9], Gen.Int[0, 3], Gen.Bool, Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (rows, n, k, index, accumulate, seed) =>
                {
                    var r = new Random(seed);
                    int offset = r.Next(3),
                        stack = index + 1,
                        total = rows + offset + 1;
                    // Activations start at row `offset` (outputs one further down for x·wᵀ), weights are matrix `index`
                    // of a stack.
                    var cases = new (
                        string Name,
                        Action<ILayerKernels, Tensor, Tensor, Tensor> Run,
                        int[] AShape,
                        int[] BShape,
                        int[] CShape
                    )[]
                    {
                        (
                            "x·wᵀ",
                            (kk, a, b, c) =>
                                kk.Gemm.MatMulTransposeB(
                                    new(a, offset),
                                    new(b, index),
                                    new(c, offset + 1),
                                    new(rows, n, k),
                                    accumulate
                                ),
                            [total, k],
                            [stack, n, k],
                            [total + 1, n]
                        ),
                        (
                            "dy·w",
                            (kk, a, b, c) =>
                                kk.Gemm.MatMul(
                                    new(a, offset),
                                    new(b, index),
                                    new(c, offset),
                                    new(rows, n, k),
                                    accumulate
                                ),
                            [total, k],
                            [stack, k, n],
                            [total, n]
                        ),
                        (
                            "dyᵀ·x",
                            (kk, a, b, c) =>
                                kk.Gemm.MatMulTransposeA(
                                    new(a, offset),
                                    new(b, offset + 1),
                                    new(c, index),
                                    new(n, k, rows),
                                    accumulate
                                ),
                            [total, n],
                            [total + 1, k],
                            [stack, n, k]
                        ),
                    };
                    foreach (var (name, run, aShape, bShape, cShape) in cases)
                    {
                        float[] a = Random(r, aShape.Aggregate(1, (x, y) => x * y)),
                            b = Random(r, bShape.Aggregate(1, (x, y) => x * y));
                        float[] c = Random(r, cShape.Aggregate(1, (x, y) => x * y));
                        Tensor hostC = Tensor.FromArray((float[])c.Clone(), cShape),
                            deviceC = Up(c, cShape);
                        run(_host, Tensor.FromArray(a, aShape), Tensor.FromArray(b, bShape), hostC);
                        run(_b.Layer, Up(a, aShape), Up(b, bShape), deviceC);
                        float[] expected = hostC.AsSpan<float>().ToArray(),
                            actual = Floats(deviceC);
                        for (int i = 0; i < expected.Length; i++)
                        {
                            // At most 9 products of magnitude ≤ 16 on top of a value ≤ 4: float32 rounding stays far
                            // below 1e-4.
                            Assert.True(
                                Math.Abs(expected[i] - actual[i]) <= 1e-4f,
                                $"{name} element {i}: host {expected[i]}, device {actual[i]}"
                            );
                        }
                    }
                },
                iter: 60,
                threads: 1
            );
    }

    [Fact]
    public void BFloat16Products_AreTheProductsOfTheRoundedInputs()
    {
        using var half = new IlgpuLayerKernels(_b, bfloat16Products: true);
        Assert.True(half.BFloat16Products);
        Gen.Select(Gen.Int[1, 9], Gen.Int[1, 9], Gen.Int[1, 40], Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (rows, n, k, seed) =>
                {
                    var r = new Random(seed);
                    float[] a = Random(r, rows * k),
                        b = Random(r, n * k);
                    static float[] Rounded(float[] v) =>
                        Tensor.FromArray(v, v.Length).ToBFloat16().ToFloat32().AsSpan<float>().ToArray();
                    // The host product of the bfloat16-rounded inputs is the definition (each product is exact in
                    // float32).
                    var expected = Tensor.Zeros(DType.Float32, rows, n);
                    _host.Gemm.MatMulTransposeB(
                        Tensor.FromArray(Rounded(a), rows, k),
                        Tensor.FromArray(Rounded(b), n, k),
                        expected,
                        new(rows, n, k)
                    );
                    Tensor actual = _b.Layer.RentZeros(DType.Float32, rows, n);
                    half.MatMulTransposeB(Up(a, rows, k), Up(b, n, k), actual, new(rows, n, k));
                    float[] e = expected.AsSpan<float>().ToArray(),
                        got = Floats(actual);
                    for (int i = 0; i < e.Length; i++)
                        Assert.True(Math.Abs(e[i] - got[i]) <= 1e-4f, $"element {i}: {e[i]} vs {got[i]}");
                    // And they are not the float32 products: rounding the inputs must show somewhere.
                    var full = Tensor.Zeros(DType.Float32, rows, n);
                    _host.Gemm.MatMulTransposeB(
                        Tensor.FromArray(a, rows, k),
                        Tensor.FromArray(b, n, k),
                        full,
                        new(rows, n, k)
                    );
                    Assert.True(
                        rows * n * k < 4 || !full.AsSpan<float>().SequenceEqual(got),
                        "bfloat16 products gave the float32 bits"
                    );
                },
                iter: 40,
                threads: 1
            );
    }

    [Fact]
    public void ElementwiseKernels_MatchTheHostBitwise()
    {
        Gen.Select(Gen.Int[0, 12], Gen.Int[1, 10], Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (tokens, experts, seed) =>
                {
                    var r = new Random(seed);
                    int n = tokens * experts;
                    float[] da = Random(r, n),
                        g = Random(r, n),
                        u = Random(r, n);
                    float[] probabilities = Enumerable.Range(0, n).Select(_ => (float)r.NextDouble()).ToArray();

                    Tensor hg = Tensor.Zeros(DType.Float32, n),
                        hu = Tensor.Zeros(DType.Float32, n);
                    _host.Elementwise.SwiGluBackward(
                        Tensor.FromArray(da, n),
                        Tensor.FromArray(g, n),
                        Tensor.FromArray(u, n),
                        hg,
                        hu
                    );
                    Tensor dg = _b.Layer.Allocator.Rent(DType.Float32, n),
                        du = _b.Layer.Allocator.Rent(DType.Float32, n);
                    _b.Layer.Elementwise.SwiGluBackward(Up(da, n), Up(g, n), Up(u, n), dg, du);
                    Assert.Equal(hg.AsSpan<float>().ToArray(), Floats(dg));
                    Assert.Equal(hu.AsSpan<float>().ToArray(), Floats(du));

                    foreach (ScoreFunction f in new[] { ScoreFunction.Softmax, ScoreFunction.Sigmoid })
                    {
                        Tensor hz = Tensor.Zeros(DType.Float32, tokens, experts);
                        _host.Router.ScoreBackward(
                            f,
                            Tensor.FromArray(probabilities, tokens, experts),
                            Tensor.FromArray(da, tokens, experts),
                            hz
                        );
                        Tensor dz = _b.Layer.Allocator.Rent(DType.Float32, tokens, experts);
                        _b.Layer.Router.ScoreBackward(
                            f,
                            Up(probabilities, tokens, experts),
                            Up(da, tokens, experts),
                            dz
                        );
                        Assert.Equal(hz.AsSpan<float>().ToArray(), Floats(dz));
                    }

                    int offset = tokens / 2;
                    Tensor into = Tensor.FromArray((float[])g.Clone(), tokens, experts),
                        intoDevice = Up(g, tokens, experts);
                    float[] rows = Random(r, (tokens - offset) * experts);
                    _host.Elementwise.AddRows(into, offset, Tensor.FromArray(rows, tokens - offset, experts));
                    _b.Layer.Elementwise.AddRows(intoDevice, offset, Up(rows, tokens - offset, experts));
                    Assert.Equal(into.AsSpan<float>().ToArray(), Floats(intoDevice));

                    var scalars = new AdamWScalars(0.9f, 0.999f, 1e-3f / 0.19f, MathF.Sqrt(0.002f), 1e-8f, 1f - 1e-5f);
                    float[] m = Random(r, n, 0.1),
                        v = probabilities;
                    Tensor hv = Tensor.FromArray((float[])g.Clone(), n),
                        hm = Tensor.FromArray((float[])m.Clone(), n),
                        hs = Tensor.FromArray((float[])v.Clone(), n);
                    Tensor dv = Up(g, n),
                        dm = Up(m, n),
                        ds = Up(v, n);
                    _host.Optimizer.AdamWStep(hv, Tensor.FromArray(da, n), hm, hs, scalars);
                    _b.Layer.Optimizer.AdamWStep(dv, Up(da, n), dm, ds, scalars);
                    Assert.Equal(hv.AsSpan<float>().ToArray(), Floats(dv));
                    Assert.Equal(hm.AsSpan<float>().ToArray(), Floats(dm));
                    Assert.Equal(hs.AsSpan<float>().ToArray(), Floats(ds));
                },
                iter: 40,
                threads: 1
            );
    }

    /// <summary>Whole 128-element tiles take the tiled AdamW kernel; its updates are the host's bits too.</summary>
    [Fact]
    public void TiledAdamW_MatchesTheHostBitwise()
    {
        var r = new Random(3);
        var scalars = new AdamWScalars(0.9f, 0.95f, 1e-3f / 0.1f, MathF.Sqrt(0.05f), 1e-8f, 1f - 1e-4f);
        foreach (int n in new[] { 128, 640, 130 })
        {
            float[] value = Random(r, n),
                grad = Random(r, n),
                m = Random(r, n, 0.1);
            float[] v = Enumerable.Range(0, n).Select(_ => (float)r.NextDouble()).ToArray();
            Tensor hv = Tensor.FromArray((float[])value.Clone(), n),
                hm = Tensor.FromArray((float[])m.Clone(), n),
                hs = Tensor.FromArray((float[])v.Clone(), n);
            Tensor dv = Up(value, n),
                dm = Up(m, n),
                ds = Up(v, n);
            _host.Optimizer.AdamWStep(hv, Tensor.FromArray(grad, n), hm, hs, scalars);
            _b.Layer.Optimizer.AdamWStep(dv, Up(grad, n), dm, ds, scalars);
            Assert.Equal(hv.AsSpan<float>().ToArray(), Floats(dv));
            Assert.Equal(hm.AsSpan<float>().ToArray(), Floats(dm));
            Assert.Equal(hs.AsSpan<float>().ToArray(), Floats(ds));
            Assert.NotEqual(value, Floats(dv));
        }
    }

    /// <summary>Rows of a whole number of 128-value chunks take the tiled row addition: the host's sums.</summary>
    [Fact]
    public void AddRows_OfWholeChunks_MatchTheHostBitwise()
    {
        var r = new Random(3);
        float[] into = Random(r, 5 * 256),
            rows = Random(r, 3 * 256);
        Tensor hInto = Tensor.FromArray((float[])into.Clone(), 5, 256),
            dInto = Up(into, 5, 256);
        _host.Elementwise.AddRows(hInto, 1, Tensor.FromArray(rows, 3, 256));
        _b.Layer.Elementwise.AddRows(dInto, 1, Up(rows, 3, 256));
        Assert.Equal(hInto.AsSpan<float>().ToArray(), Floats(dInto));
        Assert.NotEqual(into, Floats(dInto));
    }

    /// <summary>
    /// The router's fused calls (softmax and top-k in one kernel, their backward passes in one) against the host's
    /// two calls each, over both score functions, node-limited or not, with or without bias and route norm, and
    /// token counts that leave the last group of a launch part full.
    /// </summary>
    [Fact]
    public void ScoreTopK_AndTopScoresScoreBackward_MatchTheHostsTwoCallsBitwise()
    {
        Gen.Select(Gen.Int[0, 40], Gen.Int[1, 4], Gen.Int[2, 5], Gen.Int[0, 7], Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (tokens, groups, perGroup, pick, seed) =>
                {
                    var r = new Random(seed);
                    int experts = groups * perGroup;
                    bool limited = pick % 2 == 1 && groups > 1;
                    int limitedGroups = limited ? 1 + r.Next(groups) : 0;
                    int k = 1 + r.Next(limited ? limitedGroups * perGroup : experts);
                    ScoreFunction function = pick >= 4 ? ScoreFunction.Sigmoid : ScoreFunction.Softmax;
                    var options = new TopKOptions
                    {
                        NumExpertGroups = limited ? groups : 0,
                        NumLimitedGroups = limitedGroups,
                        RouteNorm = pick % 4 >= 2,
                        RouteScale = 2.5f,
                        ZeroDiscardedGroups = r.Next(2) == 0,
                    };
                    // Logits of few distinct values, so the scores tie often.
                    float[] z = Enumerable.Range(0, tokens * experts).Select(_ => r.Next(5) / 2f - 1f).ToArray();
                    float[]? bias =
                        r.Next(2) == 0
                            ? Enumerable.Range(0, experts).Select(_ => (r.Next(5) - 2) / 8f).ToArray()
                            : null;

                    Tensor hScores = Tensor.Zeros(DType.Float32, tokens, experts),
                        hTop = Tensor.Zeros(DType.Float32, tokens, k),
                        hIds = Tensor.Zeros(DType.Int64, tokens, k);
                    _host.Router.ScoreTopK(
                        function,
                        Tensor.FromArray(z, tokens, experts),
                        hScores,
                        bias is null ? null : Tensor.FromArray(bias, experts),
                        options,
                        hTop,
                        hIds
                    );
                    Tensor dScores = Up(z, tokens, experts),
                        dTop = _b.Layer.Allocator.Rent(DType.Float32, tokens, k),
                        dIds = _b.Layer.Allocator.Rent(DType.Int64, tokens, k);
                    _b.Layer.Router.ScoreTopK(
                        function,
                        dScores,
                        dScores,
                        bias is null ? null : Up(bias, experts),
                        options,
                        dTop,
                        dIds
                    );
                    Assert.Equal(hScores.AsSpan<float>().ToArray(), Floats(dScores));
                    Assert.Equal(hIds.AsSpan<long>().ToArray(), dIds.ToHost().AsSpan<long>().ToArray());
                    Assert.Equal(hTop.AsSpan<float>().ToArray(), Floats(dTop));

                    float[] gradTop = Random(r, tokens * k);
                    Tensor hGrad = Tensor.Zeros(DType.Float32, tokens, experts),
                        dGrad = _b.Layer.Allocator.Rent(DType.Float32, tokens, experts);
                    _host.Router.TopScoresScoreBackward(
                        function,
                        hScores,
                        hIds,
                        Tensor.FromArray(gradTop, tokens, k),
                        options,
                        hGrad
                    );
                    _b.Layer.Router.TopScoresScoreBackward(
                        function,
                        dScores,
                        dIds,
                        Up(gradTop, tokens, k),
                        options,
                        dGrad
                    );
                    Assert.Equal(hGrad.AsSpan<float>().ToArray(), Floats(dGrad));
                },
                iter: 120,
                threads: 1
            );
    }

    [Fact]
    public void TopK_NodeLimitedOrNot_AndItsBackward_MatchTheHostBitwise()
    {
        Gen.Select(Gen.Int[0, 16], Gen.Int[1, 4], Gen.Int[2, 4], Gen.Int[0, 3], Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (tokens, groups, perGroup, pick, seed) =>
                {
                    var r = new Random(seed);
                    int experts = groups * perGroup;
                    bool limited = pick % 2 == 1 && groups > 1;
                    int limitedGroups = limited ? 1 + r.Next(groups) : 0;
                    int k = 1 + r.Next(limited ? limitedGroups * perGroup : experts);
                    bool norm = pick >= 2,
                        biased = r.Next(2) == 0;
                    // transformers' DeepSeek-V3 rule (discarded groups compete with 0) or torchtitan's (left out).
                    bool zeroDiscarded = r.Next(2) == 0;
                    // Few distinct values, so expert and group ties are common; an occasional NaN ranks last. Negative
                    // biases push kept experts below the 0 of the discarded ones, and ties at 0 happen.
                    float[] s = Enumerable
                        .Range(0, tokens * experts)
                        .Select(_ => r.Next(16) == 0 ? float.NaN : r.Next(5) / 4f)
                        .ToArray();
                    float[]? bias = biased
                        ? Enumerable.Range(0, experts).Select(_ => (r.Next(5) - 2) / 4f).ToArray()
                        : null;
                    int g = limited ? groups : 0;
                    var options = new TopKOptions
                    {
                        NumExpertGroups = g,
                        NumLimitedGroups = limitedGroups,
                        RouteNorm = norm,
                        RouteScale = 2.5f,
                        ZeroDiscardedGroups = zeroDiscarded,
                    };

                    Tensor hTop = Tensor.Zeros(DType.Float32, tokens, k),
                        hIds = Tensor.Zeros(DType.Int64, tokens, k);
                    _host.Router.TopK(
                        Tensor.FromArray(s, tokens, experts),
                        bias is null ? null : Tensor.FromArray(bias, experts),
                        options,
                        hTop,
                        hIds
                    );
                    Tensor dTop = _b.Layer.Allocator.Rent(DType.Float32, tokens, k),
                        dIds = _b.Layer.Allocator.Rent(DType.Int64, tokens, k);
                    _b.Layer.Router.TopK(
                        Up(s, tokens, experts),
                        bias is null ? null : Up(bias, experts),
                        options,
                        dTop,
                        dIds
                    );
                    Assert.Equal(hIds.AsSpan<long>().ToArray(), dIds.ToHost().AsSpan<long>().ToArray());
                    Assert.Equal(hTop.AsSpan<float>().ToArray(), Floats(dTop));
                    // The device adds to the counts it is given (here a running total started at 3).
                    Tensor hCounts = Tensor.Zeros(DType.Int64, experts);
                    _host.Router.CountPerExpert(hIds, hCounts);
                    long[] threes = Enumerable.Repeat(3L, experts).ToArray();
                    Tensor dCounts = _b.Kernels.Device.ToDevice(Tensor.FromArray(threes, experts));
                    _b.Layer.Router.CountPerExpert(dIds, dCounts);
                    Assert.Equal(
                        hCounts.AsSpan<long>().ToArray().Select(c => c + 3),
                        dCounts.ToHost().AsSpan<long>().ToArray()
                    );

                    float[] gradTop = Random(r, tokens * k);
                    Tensor hGrad = Tensor.Zeros(DType.Float32, tokens, experts),
                        dGrad = _b.Layer.Allocator.Rent(DType.Float32, tokens, experts);
                    _host.Router.TopScoresBackward(
                        Tensor.FromArray(s, tokens, experts),
                        hIds,
                        Tensor.FromArray(gradTop, tokens, k),
                        options,
                        hGrad
                    );
                    _b.Layer.Router.TopScoresBackward(
                        Up(s, tokens, experts),
                        dIds,
                        Up(gradTop, tokens, k),
                        options,
                        dGrad
                    );
                    Assert.Equal(hGrad.AsSpan<float>().ToArray(), Floats(dGrad));
                },
                iter: 120,
                threads: 1
            );
    }

    [Fact]
    public void TopK_DiscardedGroupsAtZero_OutrankNegativeKeptExperts()
    {
        // Groups of 2, biased scores {0.9, −0.8 | −0.7, −0.6 | 0.7, −1.2}: groups 0 and 2 are kept and hold one
        // positive
        // expert each; K = 3. Left out, group 1 cannot fill the third place (expert 1 does); at 0 its expert 2 does.
        float[] s = [0.9f, 0.2f, 0.3f, 0.4f, 0.7f, 0.3f];
        float[] bias = [0f, -1f, -1f, -1f, 0f, -1.5f];
        foreach (
            (bool zero, long[] expected) in new[] { (false, new long[] { 0, 1, 4 }), (true, new long[] { 0, 2, 4 }) }
        )
        {
            Tensor dTop = _b.Layer.Allocator.Rent(DType.Float32, 1, 3);
            Tensor dIds = _b.Layer.Allocator.Rent(DType.Int64, 1, 3);
            var options = new TopKOptions
            {
                NumExpertGroups = 3,
                NumLimitedGroups = 2,
                RouteNorm = true,
                RouteScale = 2.5f,
                ZeroDiscardedGroups = zero,
            };
            _b.Layer.Router.TopK(Up(s, 1, 6), Up(bias, 6), options, dTop, dIds);
            Assert.Equal(expected, dIds.ToHost().AsSpan<long>().ToArray());
            float sum = s[expected[0]] + s[expected[1]] + s[expected[2]];
            Assert.Equal(expected.Select(e => s[e] / (sum + 1e-20f) * 2.5f), Floats(dTop));
        }
    }
}
