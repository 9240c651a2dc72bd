using ILGPU.Runtime;
using MoeSharp.Compute;
using MoeSharp.Cuda.Memory;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// An ILGPU accelerator as an <see cref="IComputeDevice"/>: tensors are buffers of a caching
/// <see cref="IlgpuTensorAllocator"/>, uploads go through its staged copies, and waits on the default stream go
/// through its host-wait guard (so a stuck peer turns into an error instead of a hang).
/// </summary>
public sealed class IlgpuComputeDevice : IComputeDevice
{
    private readonly IlgpuTensorAllocator _allocator;

    /// <summary>The device of <paramref name="allocator"/>'s accelerator.</summary>
    /// <param name="allocator">Where the device's tensors come from; the caller keeps ownership.</param>
    public IlgpuComputeDevice(IlgpuTensorAllocator allocator)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        _allocator = allocator;
    }

    /// <summary>The accelerator the tensors live on.</summary>
    public Accelerator Accelerator => _allocator.Accelerator;

    /// <inheritdoc />
    public string Name => _allocator.DeviceName;

    /// <inheritdoc />
    public bool IsHost => false;

    /// <inheritdoc />
    public ITensorAllocator Allocator => _allocator;

    /// <inheritdoc />
    public Tensor ToDevice(Tensor host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!host.IsOnHost)
        {
            if (host.DeviceBuffer is IlgpuDeviceBuffer b && b.Accelerator == Accelerator)
                return host;
            host = host.ToHost();
        }
        return _allocator.Upload(host);
    }

    /// <inheritdoc />
    public Tensor ToHost(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return tensor.ToHost();
    }

    /// <inheritdoc />
    public void Synchronize() => _allocator.HostWaits.Synchronize(Accelerator.DefaultStream, "Synchronize");
}
