namespace MoeSharp.Tensors;

/// <summary>
/// Storage of a <see cref="Tensor"/> on an accelerator, provided by a compute backend (for example the CUDA
/// backend's ILGPU buffers). The core library only moves bytes through it; kernels of the owning backend
/// reach the memory itself.
/// </summary>
public abstract class DeviceBuffer
{
    /// <summary>Where the memory is, e.g. <c>cuda:0</c>.</summary>
    public abstract string DeviceName { get; }

    /// <summary>Size of the buffer in bytes (at least the tensor's bytes).</summary>
    public abstract long LengthInBytes { get; }

    /// <summary>
    /// Copies <c>destination.Length</c> bytes starting at <paramref name="byteOffset"/> to host memory; returns when
    /// done.
    /// </summary>
    public abstract void CopyToHost(long byteOffset, Span<byte> destination);

    /// <summary>
    /// Copies <paramref name="source"/> into the buffer at <paramref name="byteOffset"/>; returns when done.
    /// </summary>
    public abstract void CopyFromHost(ReadOnlySpan<byte> source, long byteOffset);
}
