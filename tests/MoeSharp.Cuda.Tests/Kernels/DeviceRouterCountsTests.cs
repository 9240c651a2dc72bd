using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// On a device the router's expert counts stay there (docs/cuda.md, "Host waits in a layer step"):
/// <see cref="RouterOutput.TokensPerExpert"/> brings them to the host on first read, never from storage the next
/// forward reused, and the load balancer keeps its running total on the device until it is read.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class DeviceRouterCountsTests(CpuBackendFixture fixture)
{
    private const int Experts = 8,
        TopK = 2,
        Tokens = 40;

    private MoeLayer NewLayer(IlgpuBackend backend)
    {
        var args = new MoeLayerArgs(dim: 16, hidden: 24, numExperts: Experts, topK: TopK) { LoadBalancing = true };
        var layer = new MoeLayer(
            args,
            new LocalTokenDispatcher(new TokenDispatcherConfig(Experts, TopK), backend.Kernels),
            null,
            backend.Layer
        );
        var r = new Random(11);
        Tensor Random(params int[] shape) =>
            Tensor.FromArray(
                Enumerable
                    .Range(0, shape.Aggregate(1, (a, b) => a * b))
                    .Select(_ => (float)(r.NextDouble() - 0.5))
                    .ToArray(),
                shape
            );
        MoeLayerCheckpoint.Load(
            layer,
            [
                new(MoeLayerCheckpoint.GateWeight, Random(Experts, 16)),
                new(MoeLayerCheckpoint.ExpertsW1, Random(Experts, 24, 16)),
                new(MoeLayerCheckpoint.ExpertsW2, Random(Experts, 16, 24)),
                new(MoeLayerCheckpoint.ExpertsW3, Random(Experts, 24, 16)),
            ]
        );
        return layer;
    }

    private static Tensor Batch(IlgpuBackend backend, int seed)
    {
        var r = new Random(seed);
        float[] values = Enumerable.Range(0, Tokens * 16).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        return backend.Kernels.Device.ToDevice(Tensor.FromArray(values, Tokens, 16));
    }

    private static long[] HostCounts(RouterOutput routing)
    {
        var counts = new long[Experts];
        foreach (long id in routing.ExpertIds.ToHost().AsSpan<long>())
            counts[id]++;
        return counts;
    }

    [Fact]
    public void TokensPerExpert_IsReadOnFirstAccess_AndNeverAfterTheNextForward()
    {
        IlgpuBackend backend = fixture.Backend;
        using MoeLayer layer = NewLayer(backend);

        layer.Forward(Batch(backend, 1));
        RouterOutput read = layer.LastRouting!;
        Assert.False(read.ExpertCounts.IsOnHost);
        long[] first = read.TokensPerExpert.AsSpan<long>().ToArray();
        Assert.Equal(HostCounts(read), first);
        Assert.Same(read.TokensPerExpert, read.TokensPerExpert);

        layer.Forward(Batch(backend, 2));
        RouterOutput unread = layer.LastRouting!;
        layer.Forward(Batch(backend, 3));

        // Read before the next forward: the host copy stays. Not read: its storage went back, so it throws.
        Assert.Equal(first, read.TokensPerExpert.AsSpan<long>().ToArray());
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => unread.TokensPerExpert);
        Assert.Contains("next forward", e.Message);
    }

    [Fact]
    public void Balancer_SumsTheForwardsOnTheDevice_UntilRead()
    {
        IlgpuBackend backend = fixture.Backend;
        using MoeLayer layer = NewLayer(backend);
        var expected = new long[Experts];
        for (int step = 0; step < 3; step++)
        {
            layer.Forward(Batch(backend, 10 + step));
            long[] counts = HostCounts(layer.LastRouting!);
            for (int i = 0; i < Experts; i++)
                expected[i] += counts[i];
        }

        Assert.Equal(expected, layer.TokensPerExpert!.AsSpan<long>().ToArray());
        Assert.Equal(expected, layer.UpdateExpertBias(1e-3f));
        Assert.All(layer.TokensPerExpert!.AsSpan<long>().ToArray(), c => Assert.Equal(0L, c));

        layer.Forward(Batch(backend, 20));
        long[] next = HostCounts(layer.LastRouting!);
        Assert.Equal(next, layer.UpdateExpertBias(1e-3f));
        Assert.Equal(3 * Tokens * TopK, expected.Sum());
    }
}
