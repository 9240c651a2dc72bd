namespace MoeSharp.Tensors;

/// <summary>
/// A caching allocator for large tensors, in the spirit of PyTorch's: storage handed back with
/// <see cref="Return"/> is reused by later <see cref="Rent"/> calls instead of being freed, so steady-state
/// dispatch and combine touch warm memory instead of paying the operating system's page faults for fresh
/// gigabytes on every call. Thread-safe.
/// </summary>
/// <remarks>
/// A rented tensor may sit on a longer array (its <see cref="Tensor.ElementCount"/> is exact). Return a
/// tensor only when nothing uses it or any reshaped view of it any more; its contents are unspecified when
/// rented again. Tensors never returned are simply collected by the GC.
/// </remarks>
public sealed class TensorPool : ITensorAllocator
{
    /// <summary>Requests smaller than this many bytes are plain allocations (cheap, not worth caching).</summary>
    private const long MinPooledBytes = 1 << 16;

    private readonly object _lock = new();
    private readonly List<Array> _free = [];
    private long _retainedBytes;

    /// <summary>Creates a pool that keeps at most <paramref name="maxRetainedBytes"/> of returned storage.</summary>
    public TensorPool(long maxRetainedBytes = 8L << 30)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxRetainedBytes);
        MaxRetainedBytes = maxRetainedBytes;
    }

    /// <summary>Most bytes of returned storage kept for reuse; beyond it, returned storage is left to the GC.</summary>
    public long MaxRetainedBytes { get; }

    /// <summary>Bytes of storage waiting to be reused.</summary>
    public long RetainedBytes { get { lock (_lock) return _retainedBytes; } }

    /// <summary>A tensor of <paramref name="shape"/> with unspecified contents, on reused storage when some fits.</summary>
    public Tensor Rent(DType dtype, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long count = 1;
        foreach (int d in shape) count *= Math.Max(d, 0);
        long bytes = count * dtype.SizeOf();
        if (bytes < MinPooledBytes) return Tensor.Uninitialized(dtype, shape);

        Type element = dtype.ClrType();
        lock (_lock)
        {
            // Best fit among arrays of the element type that waste at most half of themselves.
            int best = -1;
            for (int i = 0; i < _free.Count; i++)
            {
                Array candidate = _free[i];
                if (candidate.GetType().GetElementType() != element || candidate.Length < count || candidate.Length > 2 * count) continue;
                if (best < 0 || candidate.Length < _free[best].Length) best = i;
            }
            if (best >= 0)
            {
                Array storage = _free[best];
                _free.RemoveAt(best);
                _retainedBytes -= (long)storage.Length * dtype.SizeOf();
                return Tensor.OverStorage(dtype, shape, storage);
            }
        }
        // Headroom: routed row counts change a little from call to call, so a slightly larger array keeps fitting.
        long padded = Math.Min(Array.MaxLength, count + count / 8);
        return Tensor.OverStorage(dtype, shape, Tensor.AllocateStorage(dtype, (int)padded));
    }

    /// <summary>Hands <paramref name="tensor"/>'s storage back for reuse. Null is ignored.</summary>
    public void Return(Tensor? tensor)
    {
        if (tensor is null || !tensor.IsOnHost) return;
        Array storage = tensor.Storage;
        long bytes = (long)storage.Length * tensor.DType.SizeOf();
        if (bytes < MinPooledBytes) return;
        lock (_lock)
        {
            foreach (Array held in _free)
            {
                // Returning twice would hand one array to two owners.
                if (ReferenceEquals(held, storage)) throw new InvalidOperationException("this tensor's storage was already returned to the pool");
            }
            if (_retainedBytes + bytes > MaxRetainedBytes) return;
            _free.Add(storage);
            _retainedBytes += bytes;
        }
    }
}
