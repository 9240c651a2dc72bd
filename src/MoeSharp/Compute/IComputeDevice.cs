using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// Where a backend's tensors live, apart from the kernels that run on them: the device's name, where its tensors
/// come from, the copies between it and the host, and the wait for its queued work. <see cref="IMoeKernels.Device"/>
/// and the layer kernels share one device, so a dispatcher, a layer and their callers agree on it by name.
/// </summary>
public interface IComputeDevice
{
    /// <summary>
    /// Where the tensors live, e.g. <c>host</c>, <c>cuda:0</c> or <c>ilgpu-cpu</c>; a tensor's
    /// <see cref="Tensor.Device"/>.
    /// </summary>
    string Name { get; }

    /// <summary>
    /// True when the tensors are host memory, so host code may read them in place (spans) and the memory checks that
    /// consult the host's free memory apply.
    /// </summary>
    bool IsHost { get; }

    /// <summary>
    /// Where this device's tensors come from and go back to
    /// (<see cref="ITensorAllocator.Rent"/>/<see cref="ITensorAllocator.Return"/>).
    /// </summary>
    ITensorAllocator Allocator { get; }

    /// <summary>This device's copy of <paramref name="host"/> (the tensor itself when it already lives here).</summary>
    /// <param name="host">A tensor on the host, or on this device.</param>
    Tensor ToDevice(Tensor host);

    /// <summary>A host copy of <paramref name="tensor"/> (the tensor itself on the host); waits for the work that
    /// writes it.</summary>
    /// <param name="tensor">A tensor of this device or of the host.</param>
    Tensor ToHost(Tensor tensor);

    /// <summary>Waits until every kernel and copy issued so far has finished (for timing; a no-op on the
    /// host).</summary>
    void Synchronize();
}
