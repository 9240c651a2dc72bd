using MoeSharp.Cuda.Native;

namespace MoeSharp.Cuda.Memory;

/// <summary>
/// Small host-to-device copies that do not block the host: a dispatch's index tables (expert starts, the permutation's
/// block runs) are copied into page-locked staging memory and from there by <c>cudaMemcpyAsync</c> on the backend's
/// stream, so they take their place among the queued kernels and exchanges instead of waiting for all of them. A
/// staging slot is reused once the event recorded after its copy has completed; while every fitting slot is still in
/// flight a new one is added rather than waiting (a dispatch waits on its counts anyway, so few are ever in flight).
/// </summary>
/// <remarks>CUDA only, one per backend, used by one thread at a time (the rank's). The destination must be device
/// memory of the same context and ordered on the same stream as its readers.</remarks>
internal sealed unsafe class StagedUploads : IDisposable
{
    /// <summary>
    /// Copies larger than this go the synchronous way (they are setup-time uploads, not a dispatch's tables).
    /// </summary>
    public const long MaxBytes = 1 << 20;

    private const long MinimumSlotBytes = 16 << 10;

    private readonly CudaRuntime _cuda;
    private readonly nint _stream;
    private readonly List<Slot> _slots = [];
    private bool _disposed;

    /// <summary>
    /// Stages copies onto <paramref name="stream"/> (0: the legacy default stream) of the current context.
    /// </summary>
    public StagedUploads(nint stream)
    {
        _cuda = CudaRuntime.Shared;
        _stream = stream;
    }

    /// <summary>Staging slots allocated so far.</summary>
    public int Slots => _slots.Count;

    /// <summary>
    /// Queues a copy of <paramref name="source"/> to <paramref name="destination"/> and returns at once; the values are
    /// taken now.
    /// </summary>
    public void Upload(ReadOnlySpan<byte> source, nint destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (source.Length > MaxBytes)
            throw new ArgumentOutOfRangeException(
                nameof(source),
                source.Length,
                $"staged uploads take at most {MaxBytes} bytes"
            );
        if (source.IsEmpty)
            return;
        Slot slot = Acquire(source.Length);
        source.CopyTo(new Span<byte>((void*)slot.Host, source.Length));
        _cuda.MemcpyAsync(destination, slot.Host, source.Length, CudaConstants.MemcpyHostToDevice, _stream);
        _cuda.EventRecord(slot.Copied, _stream);
        slot.InFlight = true;
    }

    /// <summary>
    /// Frees the staging memory and events (call when the stream is idle, as a backend's dispose is).
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (Slot slot in _slots)
        {
            _cuda.EventDestroy(slot.Copied);
            _cuda.FreeHost(slot.Host);
        }
        _slots.Clear();
    }

    private Slot Acquire(long bytes)
    {
        foreach (Slot slot in _slots)
        {
            if (slot.Capacity < bytes)
                continue;
            if (slot.InFlight && !_cuda.EventQuery(slot.Copied))
                continue;
            slot.InFlight = false;
            return slot;
        }
        long capacity = Math.Max(MinimumSlotBytes, (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)bytes));
        nint host = _cuda.MallocHost(capacity);
        nint copied;
        try
        {
            copied = _cuda.EventCreate(CudaConstants.EventDisableTiming);
        }
        catch
        {
            _cuda.FreeHost(host);
            throw;
        }
        var added = new Slot(host, capacity, copied);
        _slots.Add(added);
        return added;
    }

    private sealed class Slot(nint host, long capacity, nint copied)
    {
        public nint Host { get; } = host;
        public long Capacity { get; } = capacity;
        public nint Copied { get; } = copied;
        public bool InFlight { get; set; }
    }
}
