using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// Disposing AdamW hands both moments back to the device allocator, which keeps them for the next renter (ILGPU's CPU
/// accelerator): a benchmark that builds a second layer and optimizer reuses them instead of holding two sets.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public sealed class AdamWDeviceDisposeTests(CpuBackendFixture fixture)
{
    [Fact]
    public void Dispose_returns_both_moments_to_the_allocator_once()
    {
        var kernels = fixture.Backend.Layer;
        var allocator = fixture.Backend.Allocator;
        Tensor value = kernels.RentZeros(DType.Float32, 256, 256);
        Tensor grad = kernels.RentZeros(DType.Float32, 256, 256);
        var optimizer = new AdamW([new Parameter("w", value, grad)], kernels: kernels);
        optimizer.Step();
        long retained = allocator.RetainedBytes;

        optimizer.Dispose();
        long returned = allocator.RetainedBytes - retained;
        optimizer.Dispose();

        // Two buffers of at least 256 KiB each (the allocator rounds up and adds headroom).
        Assert.InRange(returned, 2L * 256 * 256 * sizeof(float), 3L * 256 * 256 * sizeof(float));
        Assert.Equal(retained + returned, allocator.RetainedBytes);
        allocator.Return(value);
        allocator.Return(grad);
    }
}
