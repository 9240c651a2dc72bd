using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The host layer's allocator: managed arrays from a <see cref="TensorPool"/>, so the layer's working tensors (gate,
/// up, activation, their gradients, the router's) reuse the storage of the last step's instead of faulting in fresh
/// pages on every step. Only storage rented from that pool goes back to it: tensors that came from elsewhere (a
/// caller's input, a weight read from a file) are left to the GC on <see cref="Return"/>, as before, so handing one
/// back can never put its storage under a later tensor while its owner still reads it.
/// </summary>
/// <param name="pool">Where the tensors come from and where returned ones go back to.</param>
public sealed class ManagedTensorAllocator(TensorPool pool) : ITensorAllocator
{
    /// <summary>The pool behind <see cref="Rent"/>.</summary>
    public TensorPool Pool { get; } = pool ?? throw new ArgumentNullException(nameof(pool));

    /// <inheritdoc />
    public Tensor Rent(DType dtype, params int[] shape) => Pool.Rent(dtype, shape);

    /// <inheritdoc />
    /// <remarks>Returns to <see cref="Pool"/> only a tensor rented from it; any other is ignored.</remarks>
    public void Return(Tensor? tensor)
    {
        if (tensor?.Lease is { } lease && ReferenceEquals(lease.Pool, Pool))
            Pool.Return(tensor);
    }
}
