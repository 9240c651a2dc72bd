using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The host implementation of <see cref="ILayerKernels"/>: <see cref="HostGemmKernels"/>,
/// <see cref="HostRouterKernels"/>, <see cref="HostElementwiseKernels"/> and <see cref="HostOptimizerKernels"/> on
/// managed tensors from a <see cref="ManagedTensorAllocator"/> over the dispatch kernels' pool. Every result is
/// bitwise deterministic.
/// </summary>
public sealed class HostLayerKernels : ILayerKernels
{
    /// <summary>Creates the host layer kernels next to <paramref name="dispatch"/> (new host dispatch kernels when
    /// null).</summary>
    /// <param name="dispatch">The host dispatch kernels the layer shares its device with.</param>
    /// <exception cref="ArgumentException"><paramref name="dispatch"/> is not a host backend.</exception>
    public HostLayerKernels(IMoeKernels? dispatch = null)
    {
        Dispatch = dispatch ?? new HostMoeKernels();
        if (!Dispatch.Device.IsHost)
        {
            throw new ArgumentException(
                $"host layer kernels need host dispatch kernels, not {Dispatch.Device.Name}",
                nameof(dispatch)
            );
        }
        Allocator = new ManagedTensorAllocator(
            Dispatch.Device is HostComputeDevice host ? host.Pool : new TensorPool()
        );
    }

    /// <inheritdoc />
    public IMoeKernels Dispatch { get; }

    /// <inheritdoc />
    /// <remarks>Managed arrays from the dispatch kernels' <see cref="TensorPool"/> (a pool of its own when the
    /// dispatch device is not a <see cref="HostComputeDevice"/>), recycled when returned
    /// (<see cref="ManagedTensorAllocator"/>).</remarks>
    public ITensorAllocator Allocator { get; }

    /// <inheritdoc />
    public IGemmKernels Gemm => HostGemmKernels.Instance;

    /// <inheritdoc />
    public IRouterKernels Router => HostRouterKernels.Instance;

    /// <inheritdoc />
    public IElementwiseKernels Elementwise => HostElementwiseKernels.Instance;

    /// <inheritdoc />
    public IOptimizerKernels Optimizer => HostOptimizerKernels.Instance;

    /// <inheritdoc />
    /// <remarks>A fresh managed array, zeroed by the runtime (no separate clear).</remarks>
    public Tensor RentZeros(DType dtype, params int[] shape) => Tensor.Zeros(dtype, shape);
}
