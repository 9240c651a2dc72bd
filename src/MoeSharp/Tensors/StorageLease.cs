namespace MoeSharp.Tensors;

/// <summary>
/// Ties a rented tensor (and every reshaped view of it) to the <see cref="TensorPool"/> its storage came from: the pool
/// bumps <see cref="Generation"/> when the storage comes back, so a tensor stamped with an older generation is known to
/// be returned — <see cref="Tensor.Dispose"/> then does nothing, a second <see cref="TensorPool.Return"/> throws, and
/// in poisoning mode every access throws.
/// </summary>
internal sealed class StorageLease(TensorPool pool, bool poisons)
{
    /// <summary>The pool the storage goes back to.</summary>
    public TensorPool Pool { get; } = pool;

    /// <summary>True when returned storage is poisoned and stale tensors refuse every access.</summary>
    public bool Poisons { get; } = poisons;

    /// <summary>
    /// Incremented each time the storage is returned; tensors remember the generation they were rented at.
    /// </summary>
    public int Generation;
}
