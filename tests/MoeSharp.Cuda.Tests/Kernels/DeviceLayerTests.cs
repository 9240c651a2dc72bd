using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// The MoE layer with <see cref="IlgpuBackend.Layer"/> gives the host layer's routing exactly and its output,
/// gradients and an AdamW step within float32 tolerance: on ILGPU's CPU accelerator (strided-product kernel) always,
/// and on a real CUDA GPU (cuBLAS products) where there is one.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class DeviceLayerTests(CpuBackendFixture fixture)
{
    [Fact]
    public void LayerOnTheCpuAccelerator_TracksTheHostLayer() => AssertTracksHost(fixture.Backend);

    [CudaFact]
    public void LayerOnCuda_TracksTheHostLayer()
    {
        using IlgpuBackend cuda = IlgpuBackend.CreateCuda(0);
        AssertTracksHost(cuda);
    }

    private static void AssertTracksHost(IlgpuBackend backend)
    {
        var args = new MoeLayerArgs(dim: 64, hidden: 96, numExperts: 16, topK: 4)
        {
            SharedHidden = 32,
            ScoreFunc = ScoreFunction.Sigmoid,
            RouteNorm = true,
            LoadBalancing = true,
        };
        var r = new Random(11);
        Tensor Random(double scale, params int[] shape) =>
            Tensor.FromArray(
                Enumerable
                    .Range(0, shape.Aggregate(1, (a, b) => a * b))
                    .Select(_ => (float)((r.NextDouble() * 2 - 1) * scale))
                    .ToArray(),
                shape
            );
        var weights = new List<KeyValuePair<string, Tensor>>
        {
            new(MoeLayerCheckpoint.GateWeight, Random(0.2, 16, 64)),
            new(MoeLayerCheckpoint.ExpertsW1, Random(0.1, 16, 96, 64)),
            new(MoeLayerCheckpoint.ExpertsW2, Random(0.1, 16, 64, 96)),
            new(MoeLayerCheckpoint.ExpertsW3, Random(0.1, 16, 96, 64)),
            new(MoeLayerCheckpoint.SharedW1, Random(0.1, 32, 64)),
            new(MoeLayerCheckpoint.SharedW2, Random(0.1, 64, 32)),
            new(MoeLayerCheckpoint.SharedW3, Random(0.1, 32, 64)),
        };
        Tensor x = Random(1, 333, 64),
            gradOut = Random(1, 333, 64);
        var config = new TokenDispatcherConfig(16, 4);

        var host = new MoeLayer(args, new LocalTokenDispatcher(config), null);
        var device = new MoeLayer(args, new LocalTokenDispatcher(config, backend.Kernels), null, backend.Layer);
        MoeLayerCheckpoint.Load(host, weights);
        MoeLayerCheckpoint.Load(device, weights);

        Tensor hostOut = host.Forward(x);
        Tensor deviceOut = device.Forward(backend.Kernels.Device.ToDevice(x));
        Assert.True(
            host.LastRouting!.ExpertIds.BitwiseEquals(device.LastRouting!.ExpertIds.ToHost()),
            "expert ids differ"
        );
        AssertClose(host.LastRouting.TopScores, device.LastRouting.TopScores, "top scores");
        AssertClose(hostOut, deviceOut, "output");

        MoeLayerGradients hg = host.Backward(gradOut),
            dg = device.Backward(backend.Kernels.Device.ToDevice(gradOut));
        AssertClose(hg.GradX, dg.GradX, "grad x");
        AssertClose(hg.GradGateWeight, dg.GradGateWeight, "grad gate");
        AssertClose(hg.GradW1, dg.GradW1, "grad w1");
        AssertClose(hg.GradW2, dg.GradW2, "grad w2");
        AssertClose(hg.GradW3, dg.GradW3, "grad w3");
        AssertClose(hg.GradSharedW2!, dg.GradSharedW2!, "grad shared w2");

        new Training.AdamW(host.Parameters).Step();
        new Training.AdamW(device.Parameters, kernels: backend.Layer).Step();
        AssertClose(host.Experts.W1, device.Experts.W1, "w1 after AdamW");
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        float[] e = expected.ToHost().AsSpan<float>().ToArray(),
            a = actual.ToHost().AsSpan<float>().ToArray();
        Assert.Equal(e.Length, a.Length);
        double num = 0,
            den = 0;
        for (int i = 0; i < e.Length; i++)
        {
            num += (e[i] - a[i]) * (double)(e[i] - a[i]);
            den += e[i] * (double)e[i];
        }
        double relative = Math.Sqrt(num / Math.Max(den, 1e-300));
        Assert.True(relative < 1e-5, $"{what}: relative error {relative:E2}");
    }
}
