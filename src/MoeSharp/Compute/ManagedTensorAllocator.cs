using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The host layer's allocator: every tensor a fresh managed array that the GC reclaims once nothing refers to it;
/// <see cref="Return"/> does nothing. The layer hands host tensors to its callers (routing, outputs, gradients) without
/// tracking who still reads them, so it does not recycle host storage the way <see cref="TensorPool"/> does.
/// </summary>
public sealed class ManagedTensorAllocator : ITensorAllocator
{
    /// <summary>The one instance (the allocator has no state).</summary>
    public static ManagedTensorAllocator Instance { get; } = new();

    private ManagedTensorAllocator() { }

    /// <inheritdoc />
    public Tensor Rent(DType dtype, params int[] shape) => Tensor.Uninitialized(dtype, shape);

    /// <inheritdoc />
    public void Return(Tensor? tensor)
    {
        // Managed arrays: the GC reclaims them once the last reference is gone.
    }
}
