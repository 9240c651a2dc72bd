using MoeSharp.Tensors;

namespace MoeSharp.Tests.Collectives;

/// <summary>
/// Device storage the core's tests can make without a backend: bytes in a private array behind the
/// <see cref="DeviceBuffer"/> copies, so a tensor over it is "on a device" (spans throw) and only copies reach it.
/// </summary>
internal sealed class ByteArrayDeviceBuffer(string deviceName, long bytes) : DeviceBuffer
{
    private readonly byte[] _bytes = new byte[bytes];

    /// <summary>How many bytes the copies to and from the host have moved so far.</summary>
    public long BytesCopied { get; private set; }

    /// <inheritdoc />
    public override string DeviceName => deviceName;

    /// <inheritdoc />
    public override long LengthInBytes => _bytes.Length;

    /// <inheritdoc />
    public override void CopyToHost(long byteOffset, Span<byte> destination)
    {
        _bytes.AsSpan((int)byteOffset, destination.Length).CopyTo(destination);
        BytesCopied += destination.Length;
    }

    /// <inheritdoc />
    public override void CopyFromHost(ReadOnlySpan<byte> source, long byteOffset)
    {
        source.CopyTo(_bytes.AsSpan((int)byteOffset));
        BytesCopied += source.Length;
    }

    /// <summary>A device tensor holding a copy of <paramref name="host"/>.</summary>
    public static Tensor Upload(Tensor host, string deviceName = "fake:0")
    {
        var buffer = new ByteArrayDeviceBuffer(deviceName, host.AsBytes().Length);
        buffer.CopyFromHost(host.AsBytes(), 0);
        buffer.BytesCopied = 0;
        return Tensor.OnDevice(buffer, host.DType, host.Shape.ToArray());
    }
}
