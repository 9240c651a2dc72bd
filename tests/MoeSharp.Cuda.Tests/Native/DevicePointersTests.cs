using MoeSharp.Cuda.Native;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Native;

/// <summary>Tensors without a native CUDA pointer are refused with a message that says why.</summary>
public class DevicePointersTests
{
    private sealed class OpaqueBuffer : DeviceBuffer
    {
        public override string DeviceName => "opaque:0";
        public override long LengthInBytes => 64;

        public override void CopyToHost(long byteOffset, Span<byte> destination) { }

        public override void CopyFromHost(ReadOnlySpan<byte> source, long byteOffset) { }
    }

    [Fact]
    public void HostTensor_IsRefused()
    {
        var ex = Assert.Throws<InvalidOperationException>(() =>
            DevicePointers.Of(Tensor.Zeros(DType.Float32, 2, 3), "send")
        );
        Assert.Contains("send is a host tensor", ex.Message);
    }

    [Fact]
    public void BufferWithoutNativePointer_IsRefused()
    {
        var tensor = Tensor.OnDevice(new OpaqueBuffer(), DType.Float32, 4);
        var ex = Assert.Throws<InvalidOperationException>(() => DevicePointers.Of(tensor, "receive"));
        Assert.Contains("OpaqueBuffer", ex.Message);
        Assert.Contains(nameof(IDevicePointer), ex.Message);
    }
}
