using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MoeSharp.Cuda.Native;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Memory;

/// <summary>
/// Device storage of a <see cref="Tensor"/>: one ILGPU byte buffer on an accelerator (CUDA or ILGPU's CPU
/// accelerator). Kernels reach it through typed views (<see cref="View{T}"/>); NCCL and cuBLAS through
/// <see cref="NativePointer"/>.
/// </summary>
/// <remarks>
/// Copies run on the accelerator's default stream, the one every kernel of this backend is launched on, so a
/// copy sees the results of the kernels launched before it and returns only when it is complete. They block the host,
/// so they wait through the allocator's <see cref="HostWaits"/> (which drains the stream with failure checks first
/// when collectives are queued on it).
/// </remarks>
public sealed class IlgpuDeviceBuffer : DeviceBuffer, IDevicePointer, IDisposable
{
    private readonly MemoryBuffer1D<byte, Stride1D.Dense> _buffer;
    private readonly HostWaits? _waits;

    /// <summary>Wraps <paramref name="buffer"/>; disposing this object frees it.</summary>
    /// <param name="buffer">The ILGPU allocation.</param>
    /// <param name="deviceName">Name reported by <see cref="DeviceName"/>, e.g. <c>cuda:0</c>.</param>
    /// <param name="waits">How copies block the host (the allocator's); null waits on the stream alone.</param>
    internal IlgpuDeviceBuffer(MemoryBuffer1D<byte, Stride1D.Dense> buffer, string deviceName, HostWaits? waits = null)
    {
        _buffer = buffer ?? throw new ArgumentNullException(nameof(buffer));
        DeviceName = deviceName ?? throw new ArgumentNullException(nameof(deviceName));
        _waits = waits;
    }

    /// <inheritdoc />
    public override string DeviceName { get; }

    /// <inheritdoc />
    public override long LengthInBytes => _buffer.Length;

    /// <summary>The accelerator the memory belongs to.</summary>
    public Accelerator Accelerator => _buffer.Accelerator;

    /// <summary>True once the memory has been freed.</summary>
    public bool IsDisposed => _buffer.IsDisposed;

    /// <summary>
    /// The device address of the first byte (a CUDA device pointer on a CUDA accelerator, a host address on
    /// ILGPU's CPU accelerator), for native libraries such as NCCL and cuBLAS that take raw pointers.
    /// </summary>
    public IntPtr NativePointer => _buffer.NativePtr;

    /// <summary>
    /// The CUDA stream handle (<c>cudaStream_t</c>) that this buffer's copies and this backend's kernels are ordered
    /// on, or zero off CUDA.
    /// </summary>
    public IntPtr StreamPointer => _buffer.Accelerator.DefaultStream is CudaStream cuda ? cuda.StreamPtr : IntPtr.Zero;

    /// <inheritdoc />
    nint IDevicePointer.Pointer => _buffer.NativePtr;

    /// <inheritdoc />
    int IDevicePointer.DeviceOrdinal => _buffer.Accelerator is CudaAccelerator cuda ? cuda.DeviceId : -1;

    /// <summary>The whole buffer as bytes.</summary>
    public ArrayView<byte> Bytes => _buffer.View.AsContiguous();

    /// <summary>The first <paramref name="count"/> elements of the buffer as <typeparamref name="T"/>.</summary>
    public ArrayView<T> View<T>(long count)
        where T : unmanaged
    {
        long size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (count < 0 || count * size > _buffer.Length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(count),
                count,
                $"{count} elements of {size} bytes do not fit a buffer of {_buffer.Length} bytes"
            );
        }
        return Bytes.SubView(0, count * size).Cast<T>();
    }

    /// <inheritdoc />
    public override void CopyToHost(long byteOffset, Span<byte> destination)
    {
        CheckRange(byteOffset, destination.Length);
        if (destination.IsEmpty)
            return;
        AcceleratorStream stream = _buffer.Accelerator.DefaultStream;
        // Drain first: the copy itself blocks (pageable memory) behind whatever is queued, exchanges included.
        _waits?.BeforeBlockingCall("copy to host");
        Bytes.SubView(byteOffset, destination.Length).CopyToCPU(stream, destination);
        stream.Synchronize();
    }

    /// <inheritdoc />
    public override void CopyFromHost(ReadOnlySpan<byte> source, long byteOffset)
    {
        CheckRange(byteOffset, source.Length);
        if (source.IsEmpty)
            return;
        AcceleratorStream stream = _buffer.Accelerator.DefaultStream;
        _waits?.BeforeBlockingCall("copy from host");
        Bytes.SubView(byteOffset, source.Length).CopyFromCPU(stream, source);
        stream.Synchronize();
    }

    /// <summary>Frees the device memory.</summary>
    public void Dispose() => _buffer.Dispose();

    private void CheckRange(long byteOffset, long length)
    {
        ObjectDisposedException.ThrowIf(_buffer.IsDisposed, this);
        if (byteOffset < 0 || byteOffset + length > _buffer.Length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(byteOffset),
                byteOffset,
                $"bytes [{byteOffset}, {byteOffset + length}) are outside the {_buffer.Length}-byte buffer on {DeviceName}"
            );
        }
    }
}
