using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Native;

/// <summary>
/// A <c>cudaMalloc</c> allocation as a <see cref="DeviceBuffer"/>: NCCL scratch space and the native tests' device
/// tensors. The ILGPU backend's own buffers implement <see cref="IDevicePointer"/> the same way.
/// </summary>
public sealed unsafe class CudaDeviceBuffer : DeviceBuffer, IDevicePointer, IDisposable
{
    private readonly CudaRuntime _cuda;
    private nint _pointer;

    /// <summary>
    /// Allocates <paramref name="lengthInBytes"/> bytes on <paramref name="device"/> (made current on this thread).
    /// </summary>
    public CudaDeviceBuffer(int device, long lengthInBytes)
        : this(CudaRuntime.Shared, device, lengthInBytes) { }

    internal CudaDeviceBuffer(CudaRuntime cuda, int device, long lengthInBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lengthInBytes);
        _cuda = cuda;
        DeviceOrdinal = device;
        LengthInBytes = lengthInBytes;
        cuda.SetDevice(device);
        // cudaMalloc(0) returns a null pointer; keep at least one byte so Pointer is a real address.
        _pointer = cuda.Malloc(Math.Max(1, lengthInBytes));
    }

    /// <inheritdoc/>
    public override string DeviceName => $"cuda:{DeviceOrdinal}";

    /// <inheritdoc cref="DeviceBuffer.LengthInBytes"/>
    public override long LengthInBytes { get; }

    /// <summary>The CUDA device ordinal.</summary>
    public int DeviceOrdinal { get; }

    /// <summary>The device address of the first byte.</summary>
    public nint Pointer => _pointer != 0 ? _pointer : throw new ObjectDisposedException(nameof(CudaDeviceBuffer));

    /// <inheritdoc/>
    public override void CopyToHost(long byteOffset, Span<byte> destination)
    {
        CheckRange(byteOffset, destination.Length);
        if (destination.IsEmpty)
            return;
        _cuda.SetDevice(DeviceOrdinal);
        fixed (byte* target = destination)
            _cuda.Memcpy(
                (nint)target,
                Pointer + (nint)byteOffset,
                destination.Length,
                CudaConstants.MemcpyDeviceToHost
            );
    }

    /// <inheritdoc/>
    public override void CopyFromHost(ReadOnlySpan<byte> source, long byteOffset)
    {
        CheckRange(byteOffset, source.Length);
        if (source.IsEmpty)
            return;
        _cuda.SetDevice(DeviceOrdinal);
        fixed (byte* from = source)
            _cuda.Memcpy(Pointer + (nint)byteOffset, (nint)from, source.Length, CudaConstants.MemcpyHostToDevice);
    }

    /// <summary>Frees the allocation.</summary>
    public void Dispose()
    {
        nint pointer = Interlocked.Exchange(ref _pointer, 0);
        if (pointer == 0)
            return;
        _cuda.SetDevice(DeviceOrdinal);
        _cuda.FreeNoThrow(pointer);
    }

    private void CheckRange(long byteOffset, int length)
    {
        if (byteOffset < 0 || byteOffset + length > LengthInBytes)
            throw new ArgumentOutOfRangeException(
                nameof(byteOffset),
                byteOffset,
                $"bytes [{byteOffset}, {byteOffset + length}) are outside the {LengthInBytes}-byte buffer on {DeviceName}"
            );
    }
}
