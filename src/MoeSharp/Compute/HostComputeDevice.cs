using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The host as an <see cref="IComputeDevice"/>: tensors are managed arrays rented from a <see cref="TensorPool"/>,
/// transfers are the identity for host tensors, and every kernel has finished when it returns.
/// </summary>
/// <param name="pool">Where the host tensors come from.</param>
public sealed class HostComputeDevice(TensorPool pool) : IComputeDevice
{
    /// <summary>The host tensor pool behind <see cref="Allocator"/>.</summary>
    public TensorPool Pool { get; } = pool ?? throw new ArgumentNullException(nameof(pool));

    /// <inheritdoc />
    public string Name => "host";

    /// <inheritdoc />
    public bool IsHost => true;

    /// <inheritdoc />
    public ITensorAllocator Allocator => Pool;

    /// <inheritdoc />
    public Tensor ToDevice(Tensor host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return host.IsOnHost ? host : host.ToHost();
    }

    /// <inheritdoc />
    public Tensor ToHost(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return tensor.ToHost();
    }

    /// <inheritdoc />
    public void Synchronize()
    {
        // Host kernels return when done.
    }
}
