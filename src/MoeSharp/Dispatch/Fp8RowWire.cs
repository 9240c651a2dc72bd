using MoeSharp.Compute;

namespace MoeSharp.Dispatch;

/// <summary>Which <see cref="IFp8RowKernels"/> a dispatcher uses for <see cref="RowWireFormat.Fp8E4M3"/>.</summary>
internal static class Fp8RowWire
{
    /// <summary>
    /// The FP8 kernels for <paramref name="config"/>'s wire format on <paramref name="kernels"/>' device, or null for
    /// <see cref="RowWireFormat.Native"/>: the backend's own when it implements <see cref="IFp8RowKernels"/>, the
    /// host's for host tensors.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown format, or FP8 on a device backend without FP8
    /// kernels.</exception>
    public static IFp8RowKernels? KernelsFor(TokenDispatcherConfig config, IMoeKernels kernels)
    {
        switch (config.WireFormat)
        {
            case RowWireFormat.Native:
                return null;
            case RowWireFormat.Fp8E4M3:
                if (kernels is IFp8RowKernels own)
                    return own;
                if (kernels.Device.IsHost)
                    return HostFp8RowKernels.Instance;
                throw new ArgumentException(
                    $"WireFormat = Fp8E4M3 needs FP8 row kernels, and the backend on {kernels.Device.Name} has none "
                        + $"(its kernels, {kernels.GetType().Name}, do not implement IFp8RowKernels)",
                    nameof(config)
                );
            default:
                throw new ArgumentException($"unknown WireFormat {config.WireFormat}", nameof(config));
        }
    }
}
