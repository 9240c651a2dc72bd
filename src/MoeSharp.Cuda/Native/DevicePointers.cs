using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Native;

/// <summary>Finds the native device address behind a <see cref="Tensor"/>.</summary>
internal static class DevicePointers
{
    /// <summary>
    /// The device address of <paramref name="tensor"/>'s first element. Throws <see cref="InvalidOperationException"/>
    /// naming <paramref name="argument"/> when the tensor is on the host or its buffer exposes no native pointer.
    /// </summary>
    public static IDevicePointer Of(Tensor tensor, string argument)
    {
        ArgumentNullException.ThrowIfNull(tensor, argument);
        if (tensor.IsOnHost)
            throw new InvalidOperationException(
                $"{argument} is a host tensor {tensor}; NCCL and cuBLAS need device memory."
            );
        if (tensor.DeviceBuffer is not IDevicePointer pointer)
            throw new InvalidOperationException(
                $"{argument} lives in a {tensor.DeviceBuffer!.GetType().Name} on {tensor.Device}, which exposes no native CUDA pointer "
                    + $"(it must implement {nameof(IDevicePointer)})."
            );
        return pointer;
    }
}
