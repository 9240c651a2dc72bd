namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// A fact that needs a real CUDA GPU: skipped, with the reason, when ILGPU finds no CUDA device (no GPU, or no
/// libcuda). The probe never throws, so a machine without the driver just skips.
/// </summary>
public sealed class CudaFactAttribute : FactAttribute
{
    /// <summary>Probes CUDA once per attribute instance.</summary>
    public CudaFactAttribute()
    {
        if (!IlgpuBackend.CudaIsAvailable(out string reason))
            Skip = $"needs a CUDA GPU: {reason}";
    }
}
