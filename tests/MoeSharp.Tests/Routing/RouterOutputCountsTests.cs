using MoeSharp.Routing;
using MoeSharp.Tensors;
using MoeSharp.Tests.Collectives;

namespace MoeSharp.Tests.Routing;

/// <summary>
/// <see cref="RouterOutput.TokensPerExpert"/> is a host tensor on every backend: device counts are copied once, on the
/// first read, and never after their storage went back (docs/cuda.md, "Host waits in a layer step").
/// </summary>
public sealed class RouterOutputCountsTests
{
    private static readonly Tensor Ids = Tensor.FromArray([0L, 2, 1, 2], 2, 2);

    private static RouterOutput Routing(Tensor counts) =>
        new(Tensor.Zeros(DType.Float32, 2, 2), Ids, counts, Tensor.Zeros(DType.Float32, 2, 3));

    [Fact]
    public void DeviceCounts_AreCopiedOnce_OnFirstRead()
    {
        Tensor device = ByteArrayDeviceBuffer.Upload(Tensor.FromArray([1L, 1, 2], 3));
        var buffer = (ByteArrayDeviceBuffer)device.DeviceBuffer!;
        RouterOutput routing = Routing(device);

        Assert.Same(device, routing.ExpertCounts);
        Assert.Equal(0, buffer.BytesCopied);
        Tensor host = routing.TokensPerExpert;
        Assert.True(host.IsOnHost);
        Assert.Equal([1L, 1, 2], host.AsSpan<long>().ToArray());
        Assert.Same(host, routing.TokensPerExpert);
        Assert.Equal(3 * sizeof(long), buffer.BytesCopied);

        // A copy made with `with` shares the counts and their host copy; the released counts stay readable once read.
        RouterOutput copy = routing with
        {
            Scores = Tensor.Zeros(DType.Float32, 2, 3),
        };
        routing.ReleaseCounts();
        Assert.Same(host, copy.TokensPerExpert);
        Assert.Equal(3 * sizeof(long), buffer.BytesCopied);
    }

    [Fact]
    public void ReleasedDeviceCounts_NotReadBefore_Throw()
    {
        RouterOutput routing = Routing(ByteArrayDeviceBuffer.Upload(Tensor.FromArray([1L, 1, 2], 3)));
        routing.ReleaseCounts();
        var e = Assert.Throws<InvalidOperationException>(() => routing.TokensPerExpert);
        Assert.Contains("fake:0", e.Message);
    }

    [Fact]
    public void HostCounts_AreTheTensorItself_AlsoAfterRelease()
    {
        Tensor counts = Tensor.FromArray([1L, 1, 2], 3);
        RouterOutput routing = Routing(counts);
        routing.ReleaseCounts();
        Assert.Same(counts, routing.TokensPerExpert);
        Assert.Same(counts, routing.ExpertCounts);
        Assert.Equal(routing, Routing(counts) with { TopScores = routing.TopScores, Scores = routing.Scores });
    }

    [Fact]
    public void Balancer_AddsHostRoutings_AndNeedsKernelsForDeviceOnes()
    {
        var balancer = new ExpertLoadBalancer(3);
        balancer.Accumulate(Routing(Tensor.FromArray([1L, 1, 2], 3)));
        balancer.Accumulate(Routing(Tensor.FromArray([0L, 3, 1], 3)));
        Assert.Equal([1L, 4, 3], balancer.TokensPerExpert.AsSpan<long>().ToArray());

        RouterOutput onDevice = Routing(ByteArrayDeviceBuffer.Upload(Tensor.FromArray([1L, 1, 2], 3)));
        var e = Assert.Throws<InvalidOperationException>(() => balancer.Accumulate(onDevice));
        Assert.Contains("kernels", e.Message);
    }
}
