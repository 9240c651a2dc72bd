namespace MoeSharp.Tensors;

/// <summary>
/// The tensors one call rents, handed back together when the call ends: <c>using var scope = new
/// TensorScope(allocator)</c>, rent through it, and <see cref="Keep"/> what outlives the call (its results). Every
/// other tensor goes back to the allocator on <see cref="Dispose"/>, also when the call throws, so no path leaks warm
/// memory or returns a tensor twice.
/// </summary>
/// <remarks>
/// Not thread-safe: a scope belongs to the call that made it. Tensors are returned in reverse order of renting, each
/// storage once even when it was adopted twice.
/// </remarks>
public sealed class TensorScope : IDisposable
{
    private readonly List<Tensor> _owned = [];
    private bool _disposed;

    /// <summary>Creates a scope that rents from <paramref name="allocator"/>.</summary>
    /// <param name="allocator">Where the scope's tensors come from and go back to.</param>
    public TensorScope(ITensorAllocator allocator)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        Allocator = allocator;
    }

    /// <summary>Where the scope's tensors come from and go back to.</summary>
    public ITensorAllocator Allocator { get; }

    /// <summary>A tensor of <paramref name="shape"/> with unspecified contents, returned when the scope ends.</summary>
    /// <param name="dtype">Element type.</param>
    /// <param name="shape">Dimensions.</param>
    public Tensor Rent(DType dtype, params int[] shape)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Tensor tensor = Allocator.Rent(dtype, shape);
        _owned.Add(tensor);
        return tensor;
    }

    /// <summary>
    /// Makes the scope return <paramref name="tensor"/> (rented from the same allocator elsewhere) when it ends.
    /// </summary>
    /// <param name="tensor">A tensor of <see cref="Allocator"/>; null is ignored.</param>
    /// <returns><paramref name="tensor"/>.</returns>
    public Tensor? Adopt(Tensor? tensor)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (tensor is not null)
            _owned.Add(tensor);
        return tensor;
    }

    /// <summary>
    /// Takes <paramref name="tensor"/> out of the scope: the caller owns it now (a result of the call).
    /// </summary>
    /// <param name="tensor">A tensor rented or adopted by this scope.</param>
    /// <returns><paramref name="tensor"/>.</returns>
    /// <exception cref="ArgumentException">The scope does not hold <paramref name="tensor"/>.</exception>
    public Tensor Keep(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ObjectDisposedException.ThrowIf(_disposed, this);
        int removed = _owned.RemoveAll(t => ReferenceEquals(t, tensor));
        if (removed == 0)
        {
            throw new ArgumentException(
                $"tensor {tensor.DType} {tensor.ShapeString} is not held by this scope",
                nameof(tensor)
            );
        }
        return tensor;
    }

    /// <summary>Returns every tensor the scope still holds, newest first, each once.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            if (seen.Add(_owned[i]))
                Allocator.Return(_owned[i]);
        }
        _owned.Clear();
    }
}
