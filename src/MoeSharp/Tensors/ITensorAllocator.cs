namespace MoeSharp.Tensors;

/// <summary>
/// Where a backend's tensors come from: <see cref="TensorPool"/> on the host, a caching device allocator on
/// an accelerator. Rented contents are unspecified; return a tensor only when nothing uses it any more.
/// </summary>
public interface ITensorAllocator
{
    /// <summary>A tensor of <paramref name="shape"/> with unspecified contents.</summary>
    Tensor Rent(DType dtype, params int[] shape);

    /// <summary>Hands <paramref name="tensor"/>'s storage back for reuse; null is ignored.</summary>
    void Return(Tensor? tensor);
}
