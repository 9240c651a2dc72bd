using MoeSharp.Compute;
using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// The router's fused tiled kernels and the multi-tensor AdamW on a real CUDA GPU, at a qwen3-like router shape (E
/// 128, K 8, route norm): the top-k is the host's bit for bit given the device's scores, the softmax, its backward
/// and AdamW agree with the host within float32 tolerance (CUDA's exp and contracted multiply-adds), and each
/// bfloat16 copy is the rounding of the device's own new value. The same checks run on ILGPU's CPU accelerator.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class RouterOptimizerCudaTests(CpuBackendFixture fixture)
{
    [CudaFact]
    public void OnCuda_FusedRouterKernels_AndMultiTensorAdamW_TrackTheHost()
    {
        using IlgpuBackend cuda = IlgpuBackend.CreateCuda(0);
        AssertTracksHost(cuda);
    }

    [Fact]
    public void OnTheCpuAccelerator_FusedRouterKernels_AndMultiTensorAdamW_TrackTheHost() =>
        AssertTracksHost(fixture.Backend);

    private static void AssertTracksHost(IlgpuBackend cuda)
    {
        var host = new HostLayerKernels();
        ILayerKernels device = cuda.Layer;
        var r = new Random(5);
        const int tokens = 1000,
            experts = 128,
            k = 8;
        var options = new TopKOptions { RouteNorm = true, RouteScale = 2.5f };
        float[] z = Values(r, tokens * experts, 4);
        Tensor dScores = cuda.Kernels.Device.ToDevice(Tensor.FromArray(z, tokens, experts)),
            dTop = device.Allocator.Rent(DType.Float32, tokens, k),
            dIds = device.Allocator.Rent(DType.Int64, tokens, k);
        device.Router.ScoreTopK(ScoreFunction.Softmax, dScores, dScores, null, options, dTop, dIds);

        Tensor hScores = Tensor.Zeros(DType.Float32, tokens, experts);
        host.Router.Score(ScoreFunction.Softmax, Tensor.FromArray(z, tokens, experts), hScores);
        Tensor scores = dScores.ToHost();
        AssertClose(hScores.AsSpan<float>(), scores.AsSpan<float>(), 1e-5f);
        Tensor hTop = Tensor.Zeros(DType.Float32, tokens, k),
            hIds = Tensor.Zeros(DType.Int64, tokens, k);
        host.Router.TopK(scores, null, options, hTop, hIds);
        Assert.Equal(hIds.AsSpan<long>().ToArray(), dIds.ToHost().AsSpan<long>().ToArray());
        Assert.Equal(hTop.AsSpan<float>().ToArray(), dTop.ToHost().AsSpan<float>().ToArray());

        float[] gradTop = Values(r, tokens * k, 1);
        Tensor hGrad = Tensor.Zeros(DType.Float32, tokens, experts),
            dGrad = device.Allocator.Rent(DType.Float32, tokens, experts);
        host.Router.TopScoresScoreBackward(
            ScoreFunction.Softmax,
            scores,
            hIds,
            Tensor.FromArray(gradTop, tokens, k),
            options,
            hGrad
        );
        device.Router.TopScoresScoreBackward(
            ScoreFunction.Softmax,
            dScores,
            dIds,
            cuda.Kernels.Device.ToDevice(Tensor.FromArray(gradTop, tokens, k)),
            options,
            dGrad
        );
        AssertClose(hGrad.AsSpan<float>(), dGrad.ToHost().AsSpan<float>(), 1e-5f);

        // Nine parameters (two launches), sizes in and out of whole 128-value chunks, every other one with a copy.
        var s = new AdamWScalars(0.9f, 0.95f, 1e-3f / 0.1f, MathF.Sqrt(0.05f), 1e-8f, 1f - 1e-4f);
        int[] sizes = [128 * 1024, 1000, 384, 5, 262144, 130, 2048, 77, 4096];
        var parameters = new List<AdamWTensors>();
        var expected = new List<Tensor>();
        var copies = new List<Tensor?>();
        foreach (int n in sizes)
        {
            float[] value = Values(r, n, 1),
                grad = Values(r, n, 1),
                m = Values(r, n, 0.1);
            float[] v = Enumerable.Range(0, n).Select(_ => (float)r.NextDouble() * 0.01f).ToArray();
            Tensor hv = Tensor.FromArray((float[])value.Clone(), n);
            host.Optimizer.AdamWStep(
                hv,
                Tensor.FromArray(grad, n),
                Tensor.FromArray((float[])m.Clone(), n),
                Tensor.FromArray((float[])v.Clone(), n),
                s
            );
            expected.Add(hv);
            Tensor? target =
                parameters.Count % 2 == 1 ? cuda.Kernels.Device.ToDevice(Tensor.FromArray(new BFloat16[n], n)) : null;
            copies.Add(target);
            parameters.Add(
                new AdamWTensors(
                    Up(cuda, value),
                    Up(cuda, grad),
                    Up(cuda, m),
                    Up(cuda, v),
                    target is null ? null : new BFloat16CopyLayout(target, n, n, 0)
                )
            );
        }
        device.Optimizer.AdamWSteps(parameters, s);
        for (int p = 0; p < sizes.Length; p++)
        {
            float[] got = parameters[p].Value.ToHost().AsSpan<float>().ToArray();
            AssertClose(expected[p].AsSpan<float>(), got, 1e-6f);
            if (copies[p] is { } copy)
            {
                Assert.Equal(
                    got.Select(BFloat16.FromSingle).Select(b => b.Bits),
                    copy.ToHost().AsSpan<BFloat16>().ToArray().Select(b => b.Bits)
                );
            }
        }
    }

    private static Tensor Up(IlgpuBackend cuda, float[] values) =>
        cuda.Kernels.Device.ToDevice(Tensor.FromArray(values, values.Length));

    private static float[] Values(Random r, int n, double scale) =>
        Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)).ToArray();

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            float bound = tolerance * Math.Max(1f, Math.Abs(expected[i]));
            Assert.True(
                Math.Abs(expected[i] - actual[i]) <= bound,
                $"element {i}: {actual[i]} against the host's {expected[i]}"
            );
        }
    }
}
