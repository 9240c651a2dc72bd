using MoeSharp.Compute;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// AdamW that also writes the padded experts' persistent bfloat16 weights: the float32 update keeps the host's bits,
/// the copy holds each new value rounded to nearest-even bfloat16 at its layout's place, and a layer whose forward
/// reads AdamW-written copies computes exactly what a layer casting the same weights afresh computes. Weights
/// written outside AdamW (a checkpoint load, a direct write announced with
/// <see cref="Experts.GroupedExperts.MarkWeightsChanged"/>) are cast again before they are read.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class AdamWBFloat16CopyTests(CpuBackendFixture fixture)
{
    private readonly IlgpuBackend _b = fixture.Backend;

    /// <summary>n = 512: the tiled kernel; n = 130: one value per thread.</summary>
    [Theory]
    [InlineData(512)]
    [InlineData(130)]
    public void AdamWWithCopy_KeepsTheHostBits_AndWritesEachNewValueRoundedAtItsPlace(int n)
    {
        var r = new Random(7);
        var s = new AdamWScalars(0.9f, 0.95f, 1e-3f / 0.1f, MathF.Sqrt(0.05f), 1e-8f, 1f - 1e-4f);
        float[] value = Values(r, n),
            grad = Values(r, n),
            m = Values(r, n);
        float[] v = Enumerable.Range(0, n).Select(_ => (float)r.NextDouble()).ToArray();
        Tensor hv = Tensor.FromArray((float[])value.Clone(), n),
            hm = Tensor.FromArray((float[])m.Clone(), n),
            hs = Tensor.FromArray((float[])v.Clone(), n);
        new HostLayerKernels().Optimizer.AdamWStep(hv, Tensor.FromArray(grad, n), hm, hs, s);

        // Blocks of n/2 values into the second half of each n-value stretch of a 2n target (w3's place in [w1; w3]).
        const ushort sentinel = 0x7FC1;
        Tensor target = Up(Tensor.FromArray(Enumerable.Repeat(BFloat16.FromBits(sentinel), 2 * n).ToArray(), 2 * n));
        Tensor dv = Up(Tensor.FromArray((float[])value.Clone(), n)),
            dm = Up(Tensor.FromArray((float[])m.Clone(), n)),
            ds = Up(Tensor.FromArray((float[])v.Clone(), n));
        IOptimizerKernels optimizer = _b.Layer.Optimizer;
        Assert.True(optimizer.WritesBFloat16Copies);
        optimizer.AdamWStep(dv, Up(Tensor.FromArray(grad, n)), dm, ds, s, new(target, n / 2, n, n / 2));

        Assert.Equal(hv.AsSpan<float>().ToArray(), Floats(dv));
        Assert.Equal(hm.AsSpan<float>().ToArray(), Floats(dm));
        Assert.Equal(hs.AsSpan<float>().ToArray(), Floats(ds));
        ushort[] copy = target.ToHost().AsSpan<BFloat16>().ToArray().Select(b => b.Bits).ToArray();
        float[] updated = hv.AsSpan<float>().ToArray();
        for (int i = 0; i < 2 * n; i++)
        {
            int block = i / (n / 2);
            ushort expected =
                block % 2 == 1 ? RoundToBFloat16(updated[((block / 2) * (n / 2)) + (i % (n / 2))]) : sentinel;
            Assert.True(copy[i] == expected, $"copy element {i}: {copy[i]:X4}, expected {expected:X4}");
        }
        Assert.Throws<ArgumentException>(() =>
            optimizer.AdamWStep(dv, Up(Tensor.FromArray(grad, n)), dm, ds, s, new(target, n / 2, n, n))
        );
        Assert.Throws<NotSupportedException>(() =>
            new HostLayerKernels().Optimizer.AdamWStep(hv, hv, hm, hs, s, new(target, n, n, 0))
        );
    }

    /// <summary>
    /// Eleven parameters in one call (more than one launch's eight), of sizes that fill whole 128-value chunks or end
    /// inside one, every other one with a copy (blocks of whole chunks or not): each keeps the host's bits and its
    /// copy holds its rounded values.
    /// </summary>
    [Fact]
    public void AdamWSteps_ManyParameters_EachKeepsTheHostBits_AndItsCopy()
    {
        int[] sizes = [1, 127, 128, 129, 256, 1000, 384, 5, 640, 130, 2048];
        var r = new Random(11);
        var s = new AdamWScalars(0.9f, 0.95f, 1e-3f / 0.1f, MathF.Sqrt(0.05f), 1e-8f, 1f - 1e-4f);
        var parameters = new List<AdamWTensors>();
        var expected = new List<(Tensor Value, Tensor M, Tensor V)>();
        var copies = new List<(Tensor Target, int Block)>();
        foreach (int n in sizes)
        {
            float[] value = Values(r, n),
                grad = Values(r, n),
                m = Values(r, n);
            float[] v = Enumerable.Range(0, n).Select(_ => (float)r.NextDouble()).ToArray();
            Tensor hv = Tensor.FromArray((float[])value.Clone(), n),
                hm = Tensor.FromArray((float[])m.Clone(), n),
                hs = Tensor.FromArray((float[])v.Clone(), n);
            new HostLayerKernels().Optimizer.AdamWStep(hv, Tensor.FromArray(grad, n), hm, hs, s);
            expected.Add((hv, hm, hs));
            // Blocks of n (one block) or, for even sizes, n/2 spread 2 blocks apart.
            int block = n % 2 == 0 && parameters.Count % 4 == 1 ? n / 2 : n;
            Tensor target = Up(Tensor.FromArray(new BFloat16[2 * n], 2 * n));
            BFloat16CopyLayout? copy = parameters.Count % 2 == 1 ? new(target, block, 2 * block, 0) : null;
            copies.Add((target, copy is null ? 0 : block));
            parameters.Add(
                new AdamWTensors(
                    Up(Tensor.FromArray((float[])value.Clone(), n)),
                    Up(Tensor.FromArray(grad, n)),
                    Up(Tensor.FromArray((float[])m.Clone(), n)),
                    Up(Tensor.FromArray((float[])v.Clone(), n)),
                    copy
                )
            );
        }

        _b.Layer.Optimizer.AdamWSteps(parameters, s);

        for (int p = 0; p < sizes.Length; p++)
        {
            float[] updated = expected[p].Value.AsSpan<float>().ToArray();
            Assert.Equal(updated, Floats(parameters[p].Value));
            Assert.Equal(expected[p].M.AsSpan<float>().ToArray(), Floats(parameters[p].ExpAvg));
            Assert.Equal(expected[p].V.AsSpan<float>().ToArray(), Floats(parameters[p].ExpAvgSq));
            ushort[] copy = copies[p].Target.ToHost().AsSpan<BFloat16>().ToArray().Select(b => b.Bits).ToArray();
            int block = copies[p].Block;
            for (int i = 0; i < copy.Length; i++)
            {
                ushort want =
                    block > 0 && (i / block) % 2 == 0
                        ? RoundToBFloat16(updated[((i / block / 2) * block) + (i % block)])
                        : (ushort)0;
                Assert.True(copy[i] == want, $"parameter {p}, copy element {i}: {copy[i]:X4}, expected {want:X4}");
            }
        }
    }

    [Fact]
    public void PaddedLayer_ReadsAdamWWrittenCopies_AndRecastsWeightsWrittenElsewhere()
    {
        const int dim = 256,
            hidden = 128,
            experts = 4,
            topK = 2,
            tokens = 128;
        var args = new MoeLayerArgs(dim, hidden, experts, topK);
        var r = new Random(11);
        Tensor Random(double scale, params int[] shape) =>
            Tensor.FromArray(Values(r, shape.Aggregate(1, (a, b) => a * b), scale), shape);
        // A small gate keeps the routing near uniform, so the groups fit the padded layout.
        var weights = new List<KeyValuePair<string, Tensor>>
        {
            new(MoeLayerCheckpoint.GateWeight, Random(0.01, experts, dim)),
            new(MoeLayerCheckpoint.ExpertsW1, Random(0.2, experts, hidden, dim)),
            new(MoeLayerCheckpoint.ExpertsW2, Random(0.2, experts, dim, hidden)),
            new(MoeLayerCheckpoint.ExpertsW3, Random(0.2, experts, hidden, dim)),
        };
        Tensor x = _b.Kernels.Device.ToDevice(Random(1, tokens, dim)),
            gradOut = _b.Kernels.Device.ToDevice(Random(1, tokens, dim));
        var config = new TokenDispatcherConfig(experts, topK);
        using var kernels = new IlgpuLayerKernels(_b, true, BFloat16GemmPath.PaddedBatched);
        var timed = new ProfilingLayerKernels(kernels);
        MoeLayer NewLayer(IReadOnlyList<KeyValuePair<string, Tensor>> w)
        {
            var layer = new MoeLayer(args, new LocalTokenDispatcher(config, _b.Kernels), null, timed);
            MoeLayerCheckpoint.Load(layer, w);
            return layer;
        }
        int Casts() => timed.Totals.TryGetValue(nameof(IPaddedExpertKernels.StackWeights), out var t) ? t.Calls : 0;

        MoeLayer trained = NewLayer(weights);
        var optimizer = new AdamW(trained.Parameters, 1e-2f, weightDecay: 0.1f, kernels: timed);
        for (int step = 0; step < 2; step++)
        {
            trained.Forward(x);
            trained.Backward(gradOut);
            optimizer.Step();
        }
        Assert.Equal(1, Casts()); // the first forward cast; AdamW kept the copies current since
        Tensor fromCopies = trained.Forward(x);
        Assert.Equal(1, Casts());
        // The same weights cast afresh in a new layer: the AdamW-written copies are exactly the cast ones.
        Tensor fromCast = NewLayer(MoeLayerCheckpoint.StateDict(trained)).Forward(x);
        Assert.Equal(2, Casts());
        Assert.Equal(Floats(fromCast), Floats(fromCopies));
        Assert.NotEqual(Floats(NewLayer(weights).Forward(x)), Floats(fromCopies)); // the steps changed the weights

        // A direct write announced with MarkWeightsChanged, then a checkpoint load: each is cast before it is read.
        float[] w1 = Values(r, experts * hidden * dim, 0.2);
        trained.Experts.W1.DeviceBuffer!.CopyFromHost(
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(w1.AsSpan()),
            0
        );
        trained.Experts.MarkWeightsChanged();
        int before = Casts();
        Tensor afterWrite = trained.Forward(x);
        Assert.Equal(before + 1, Casts());
        Assert.Equal(Floats(NewLayer(MoeLayerCheckpoint.StateDict(trained)).Forward(x)), Floats(afterWrite));
        MoeLayerCheckpoint.Load(trained, weights);
        Assert.Equal(Floats(NewLayer(weights).Forward(x)), Floats(trained.Forward(x)));
    }

    /// <summary>The padded experts overwrite the layer's weight gradients instead of clearing and accumulating: a
    /// second backward of the same step gives the same gradients, not twice them.</summary>
    [Fact]
    public void PaddedLayer_SecondBackward_OverwritesTheWeightGradients()
    {
        const int dim = 40,
            hidden = 48,
            experts = 8,
            topK = 2,
            tokens = 512; // PaddedExpertsTests' plain shape and inputs: even enough routing to pad
        var r = new Random(5);
        Tensor Random(double scale, params int[] shape) =>
            Tensor.FromArray(Values(r, shape.Aggregate(1, (a, b) => a * b), scale), shape);
        var weights = new List<KeyValuePair<string, Tensor>>
        {
            new(MoeLayerCheckpoint.GateWeight, Random(0.01, experts, dim)),
            new(MoeLayerCheckpoint.ExpertsW1, Random(0.2, experts, hidden, dim)),
            new(MoeLayerCheckpoint.ExpertsW2, Random(0.2, experts, dim, hidden)),
            new(MoeLayerCheckpoint.ExpertsW3, Random(0.2, experts, hidden, dim)),
        };
        Tensor x = Up(Random(1, tokens, dim)),
            gradOut = Up(Random(1, tokens, dim));
        using var kernels = new IlgpuLayerKernels(_b, true, BFloat16GemmPath.PaddedBatched);
        var timed = new ProfilingLayerKernels(kernels);
        var layer = new MoeLayer(
            new MoeLayerArgs(dim, hidden, experts, topK),
            new LocalTokenDispatcher(new TokenDispatcherConfig(experts, topK), _b.Kernels),
            null,
            timed
        );
        MoeLayerCheckpoint.Load(layer, weights);
        float[][] Step()
        {
            layer.Forward(x);
            MoeLayerGradients g = layer.Backward(gradOut);
            return [Floats(g.GradW1), Floats(g.GradW2), Floats(g.GradW3)];
        }
        float[][] first = Step(),
            second = Step();
        Assert.True(timed.Totals.ContainsKey(nameof(IPaddedExpertKernels.BatchedMatMulTransposeA)), "not padded");
        Assert.Contains(first[0], v => v != 0);
        for (int i = 0; i < 3; i++)
            Assert.Equal(first[i], second[i]);
    }

    private Tensor Up(Tensor host) => _b.Kernels.Device.ToDevice(host);

    private static float[] Values(Random r, int n, double scale = 4) =>
        Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)).ToArray();

    private static float[] Floats(Tensor t) => t.ToHost().AsSpan<float>().ToArray();

    // Round to nearest, ties to even (finite values), written out here rather than taken from the kernels.
    private static ushort RoundToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }
}
