using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Memory;

/// <summary>
/// A caching device allocator, in the spirit of <see cref="TensorPool"/> and PyTorch's CUDA caching
/// allocator: buffers handed back with <see cref="Return"/> are reused best-fit by later <see cref="Rent"/>
/// calls instead of being freed, because device allocation and free synchronize the device and cost far more
/// than a dispatch's kernels. Thread-safe. Disposing it frees every buffer it ever allocated, rented ones too.
/// A buffer may be handed back while queued kernels still use it, as with PyTorch's allocator: all work on this
/// memory is ordered on the accelerator's default stream (NCCL's communication stream waits on it by an event and the
/// default stream on the exchange by another, and copies to the host synchronize), so whatever the next renter queues
/// runs after them.
/// </summary>
public sealed class IlgpuTensorAllocator : ITensorAllocator, IDisposable
{
    /// <summary>
    /// Buffer sizes are multiples of this (CUDA allocations are 256-byte aligned anyway), never zero.
    /// </summary>
    private const long Granularity = 256;

    private readonly object _lock = new();
    private readonly List<IlgpuDeviceBuffer> _free = [];
    private readonly HashSet<IlgpuDeviceBuffer> _all = [];
    private long _retainedBytes;
    private long _freedOnReturn;
    private StagedUploads? _staged;
    private bool _disposed;

    /// <summary>
    /// Creates an allocator on <paramref name="accelerator"/> that keeps at most <paramref name="maxRetainedBytes"/> of
    /// returned buffers.
    /// </summary>
    /// <param name="accelerator">Where the memory lives; the caller keeps ownership.</param>
    /// <param name="deviceName">Device name of the tensors, e.g. <c>cuda:0</c>.</param>
    /// <param name="maxRetainedBytes">Cap on cached bytes; beyond it returned buffers are freed.</param>
    public IlgpuTensorAllocator(Accelerator accelerator, string deviceName, long maxRetainedBytes = 8L << 30)
    {
        Accelerator = accelerator ?? throw new ArgumentNullException(nameof(accelerator));
        DeviceName = deviceName ?? throw new ArgumentNullException(nameof(deviceName));
        ArgumentOutOfRangeException.ThrowIfNegative(maxRetainedBytes);
        MaxRetainedBytes = maxRetainedBytes;
    }

    /// <summary>The accelerator the buffers live on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>Device name of the tensors.</summary>
    public string DeviceName { get; }

    /// <summary>
    /// Page-locked staging slots the non-blocking small uploads have needed so far (CUDA only; 0 elsewhere).
    /// </summary>
    public int StagingSlots
    {
        get
        {
            lock (_lock)
                return _staged?.Slots ?? 0;
        }
    }

    /// <summary>
    /// How this device's blocking host waits go (copies of its buffers, the kernels' reads and <c>Synchronize</c>).
    /// </summary>
    internal HostWaits HostWaits { get; } = new();

    /// <summary>Most bytes of returned buffers kept for reuse.</summary>
    public long MaxRetainedBytes { get; }

    /// <summary>Bytes of buffers waiting to be reused.</summary>
    public long RetainedBytes
    {
        get
        {
            lock (_lock)
                return _retainedBytes;
        }
    }

    /// <summary>
    /// Buffers freed on return because the cache was full (each free waits for the device): should stay flat in a loop.
    /// </summary>
    public long FreedOnReturn
    {
        get
        {
            lock (_lock)
                return _freedOnReturn;
        }
    }

    /// <summary>Buffers allocated and not yet freed (rented or cached).</summary>
    public int LiveBuffers
    {
        get
        {
            lock (_lock)
                return _all.Count;
        }
    }

    /// <summary>
    /// A device tensor of <paramref name="shape"/> with unspecified contents, on a reused buffer when one fits.
    /// </summary>
    public Tensor Rent(DType dtype, params int[] shape)
    {
        int count = Tensor.CheckedElementCount(shape);
        long bytes = RoundUp((long)count * dtype.SizeOf());
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Best fit among buffers that waste at most half of themselves.
            int best = -1;
            for (int i = 0; i < _free.Count; i++)
            {
                long length = _free[i].LengthInBytes;
                if (length < bytes || length > 2 * bytes)
                    continue;
                if (best < 0 || length < _free[best].LengthInBytes)
                    best = i;
            }
            if (best >= 0)
            {
                IlgpuDeviceBuffer reused = _free[best];
                _free.RemoveAt(best);
                _retainedBytes -= reused.LengthInBytes;
                return Tensor.OnDevice(reused, dtype, shape);
            }
        }
        // Headroom: routed row counts change a little from call to call, so a slightly larger buffer keeps fitting.
        IlgpuDeviceBuffer buffer = Allocate(RoundUp(bytes + bytes / 8));
        return Tensor.OnDevice(buffer, dtype, shape);
    }

    /// <summary>
    /// A device tensor holding a copy of host tensor <paramref name="host"/>, whose values are taken before this
    /// returns. On CUDA a small tensor (up to <see cref="StagedUploads.MaxBytes"/>, such as a dispatch's index tables)
    /// is copied through page-locked staging on the stream without blocking the host; others (and any on ILGPU's CPU
    /// accelerator) are copied synchronously.
    /// </summary>
    public Tensor Upload(Tensor host)
    {
        ArgumentNullException.ThrowIfNull(host);
        Tensor device = Rent(host.DType, host.ShapeArray());
        var buffer = (IlgpuDeviceBuffer)device.DeviceBuffer!;
        if (Accelerator is CudaAccelerator && host.ByteCount <= StagedUploads.MaxBytes)
        {
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                // The runtime API works in the calling thread's current context: make it this device's.
                Accelerator.Bind();
                _staged ??= new StagedUploads(buffer.StreamPointer);
                _staged.Upload(host.AsBytes(), buffer.NativePointer);
            }
            return device;
        }
        buffer.CopyFromHost(host.AsBytes(), 0);
        return device;
    }

    /// <summary>Hands <paramref name="tensor"/>'s buffer back for reuse; null and host tensors are ignored.</summary>
    /// <exception cref="ArgumentException">The tensor's buffer comes from another allocator.</exception>
    /// <exception cref="InvalidOperationException">The buffer was already returned.</exception>
    public void Return(Tensor? tensor)
    {
        if (tensor is null || tensor.IsOnHost)
            return;
        if (tensor.DeviceBuffer is not IlgpuDeviceBuffer buffer)
        {
            throw new ArgumentException(
                $"tensor {tensor} on {tensor.Device} was not allocated by this ILGPU allocator ({DeviceName})",
                nameof(tensor)
            );
        }
        lock (_lock)
        {
            if (_disposed)
                return;
            if (!_all.Contains(buffer))
            {
                throw new ArgumentException(
                    $"tensor {tensor} on {tensor.Device} was not allocated by this allocator ({DeviceName})",
                    nameof(tensor)
                );
            }
            foreach (IlgpuDeviceBuffer held in _free)
            {
                // Returning twice would hand one buffer to two owners.
                if (ReferenceEquals(held, buffer))
                    throw new InvalidOperationException("this tensor's buffer was already returned to the allocator");
            }
            if (_retainedBytes + buffer.LengthInBytes > MaxRetainedBytes)
            {
                _all.Remove(buffer);
                _freedOnReturn++;
                // Freeing device memory waits for the device: drain through the guard first (queued exchanges).
                HostWaits.BeforeBlockingCall("free of device memory");
                buffer.Dispose();
                return;
            }
            _free.Add(buffer);
            _retainedBytes += buffer.LengthInBytes;
        }
    }

    /// <summary>Frees the cached buffers (rented ones stay valid).</summary>
    public void Trim()
    {
        lock (_lock)
        {
            if (_free.Count > 0)
                HostWaits.BeforeBlockingCall("free of device memory");
            foreach (IlgpuDeviceBuffer buffer in _free)
            {
                _all.Remove(buffer);
                buffer.Dispose();
            }
            _free.Clear();
            _retainedBytes = 0;
        }
    }

    /// <summary>Frees every buffer this allocator allocated; tensors rented from it become unusable.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            foreach (IlgpuDeviceBuffer buffer in _all)
                buffer.Dispose();
            _all.Clear();
            _free.Clear();
            _retainedBytes = 0;
            _staged?.Dispose();
            _staged = null;
        }
    }

    private IlgpuDeviceBuffer Allocate(long bytes)
    {
        var buffer = new IlgpuDeviceBuffer(Accelerator.Allocate1D<byte>(bytes), DeviceName, HostWaits);
        lock (_lock)
        {
            if (_disposed)
            {
                buffer.Dispose();
                throw new ObjectDisposedException(nameof(IlgpuTensorAllocator));
            }
            _all.Add(buffer);
        }
        return buffer;
    }

    private static long RoundUp(long bytes) =>
        Math.Max(Granularity, (bytes + Granularity - 1) / Granularity * Granularity);
}
