using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// The device allocator checks a shape before it allocates a buffer for it (ILGPU's CPU accelerator).
/// </summary>
[Collection(CpuBackendCollection.Name)]
public sealed class DeviceAllocatorShapeTests(CpuBackendFixture fixture)
{
    [Theory]
    [InlineData(new[] { 65_536, 65_536, 8 })]
    [InlineData(new[] { 65_536, 65_536, 65_536, 65_536 })]
    [InlineData(new[] { 3, -1, 1 << 20 })]
    public void ABadShape_IsRefused_AndNoBufferIsLeft(int[] shape)
    {
        var allocator = fixture.Backend.Allocator;
        int live = allocator.LiveBuffers;
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => allocator.Rent(DType.Float32, shape));
        Assert.Equal("shape", error.ParamName);
        Assert.Equal(live, allocator.LiveBuffers);
    }
}
