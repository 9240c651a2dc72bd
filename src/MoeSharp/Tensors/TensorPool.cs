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
/// rented again. Tensors never returned are simply collected by the GC. A rented tensor knows its pool:
/// <c>using var t = pool.Rent(...)</c> returns it at the end of the scope, and returning it (or a view of it) twice
/// throws.
/// <para>
/// Poisoning (a debugging aid, off by default; on for every pool when the environment variable
/// <c>MOESHARP_POOL_POISON</c> is <c>1</c>): returned storage is filled with NaN (integer storage with the type's
/// minimum value) and the returned tensor and its views throw <see cref="ObjectDisposedException"/> on every access,
/// so code that keeps using a tensor after handing it back fails at once instead of reading another tensor's values.
/// </para>
/// </remarks>
public sealed class TensorPool : ITensorAllocator
{
    /// <summary>Requests smaller than this many bytes are plain allocations (cheap, not worth caching).</summary>
    private const long MinPooledBytes = 1 << 16;

    private readonly object _lock = new();
    private readonly List<(Array Storage, int Offset, StorageLease Lease)> _free = [];
    private long _retainedBytes;

    /// <summary>Creates a pool that keeps at most <paramref name="maxRetainedBytes"/> of returned storage.</summary>
    /// <param name="maxRetainedBytes">Most bytes of returned storage kept for reuse.</param>
    /// <param name="poisonReturned">
    /// Poison returned storage and fail every use of a returned tensor (see the remarks); null: on when the environment
    /// variable <c>MOESHARP_POOL_POISON</c> is <c>1</c>.
    /// </param>
    public TensorPool(long maxRetainedBytes = 8L << 30, bool? poisonReturned = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxRetainedBytes);
        MaxRetainedBytes = maxRetainedBytes;
        PoisonsReturned = poisonReturned ?? Environment.GetEnvironmentVariable("MOESHARP_POOL_POISON") == "1";
    }

    /// <summary>True when returned storage is poisoned and returned tensors refuse every access.</summary>
    public bool PoisonsReturned { get; }

    /// <summary>Most bytes of returned storage kept for reuse; beyond it, returned storage is left to the GC.</summary>
    public long MaxRetainedBytes { get; }

    /// <summary>Bytes of storage waiting to be reused.</summary>
    public long RetainedBytes
    {
        get
        {
            lock (_lock)
                return _retainedBytes;
        }
    }

    /// <summary>
    /// A tensor of <paramref name="shape"/> with unspecified contents, on reused storage when some fits.
    /// </summary>
    public Tensor Rent(DType dtype, params int[] shape)
    {
        int count = Tensor.CheckedElementCount(shape);
        long bytes = (long)count * dtype.SizeOf();
        if (bytes < MinPooledBytes)
        {
            // Too small to cache, but a lease still lets Dispose and poisoning track it.
            (Array smallStorage, int smallOffset) = Tensor.AllocateStorage(dtype, count);
            return Tensor.OverStorage(dtype, shape, smallStorage, smallOffset, new StorageLease(this, PoisonsReturned));
        }

        Type element = dtype.ClrType();
        lock (_lock)
        {
            // Best fit among arrays of the element type that waste at most half of themselves.
            int best = -1;
            for (int i = 0; i < _free.Count; i++)
            {
                (Array candidate, int candidateOffset, _) = _free[i];
                if (
                    candidate.GetType().GetElementType() != element
                    || candidate.Length - candidateOffset < count
                    || candidate.Length > 2 * count
                )
                    continue;
                if (best < 0 || candidate.Length < _free[best].Storage.Length)
                    best = i;
            }
            if (best >= 0)
            {
                (Array storage, int offset, StorageLease lease) = _free[best];
                _free.RemoveAt(best);
                _retainedBytes -= (long)storage.Length * dtype.SizeOf();
                return Tensor.OverStorage(dtype, shape, storage, offset, lease);
            }
        }
        // Headroom: routed row counts change a little from call to call, so a slightly larger array keeps fitting.
        long padded = Math.Min(Array.MaxLength, count + (long)count / 8);
        (Array fresh, int freshOffset) = Tensor.AllocateStorage(dtype, (int)padded);
        return Tensor.OverStorage(dtype, shape, fresh, freshOffset, new StorageLease(this, PoisonsReturned));
    }

    /// <summary>Hands <paramref name="tensor"/>'s storage back for reuse. Null is ignored.</summary>
    /// <exception cref="InvalidOperationException">The tensor, or another view of its storage, was already
    /// returned.</exception>
    public void Return(Tensor? tensor)
    {
        if (tensor is null || !tensor.IsOnHost)
            return;
        (Array storage, int offset) = tensor.Storage;
        long bytes = (long)storage.Length * tensor.DType.SizeOf();
        StorageLease? lease = tensor.Lease is { } own && ReferenceEquals(own.Pool, this) ? own : null;
        lock (_lock)
        {
            if (lease is not null)
            {
                if (tensor.IsReturned)
                    throw AlreadyReturned(tensor);
                lease.Generation++;
                if (lease.Poisons)
                    Poison(storage);
            }
            if (bytes < MinPooledBytes)
                return;
            foreach ((Array held, _, _) in _free)
            {
                // Returning twice would hand one array to two owners.
                if (ReferenceEquals(held, storage))
                    throw AlreadyReturned(tensor);
            }
            if (_retainedBytes + bytes > MaxRetainedBytes)
                return;
            _free.Add((storage, offset, lease ?? new StorageLease(this, PoisonsReturned)));
            _retainedBytes += bytes;
        }
    }

    private static InvalidOperationException AlreadyReturned(Tensor tensor) =>
        new($"the storage of tensor {tensor.DType} {tensor.ShapeString} was already returned to the pool");

    /// <summary>NaN in floating-point storage, the minimum value in integer storage: loud in any later use.</summary>
    private static void Poison(Array storage)
    {
        switch (storage)
        {
            case float[] f:
                f.AsSpan().Fill(float.NaN);
                break;
            case BFloat16[] b:
                b.AsSpan().Fill(BFloat16.FromSingle(float.NaN));
                break;
            case int[] i:
                i.AsSpan().Fill(int.MinValue);
                break;
            case long[] l:
                l.AsSpan().Fill(long.MinValue);
                break;
        }
    }
}
