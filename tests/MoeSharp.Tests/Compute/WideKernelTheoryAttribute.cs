using MoeSharp.Compute;

namespace MoeSharp.Tests.Compute;

/// <summary>A theory that runs only where the 512-bit kernels do (AVX-512F), and says so where they do not.</summary>
public sealed class WideKernelTheoryAttribute : TheoryAttribute
{
    /// <summary>Skips unless <see cref="GemmMicroKernel.Wide"/>.</summary>
    public WideKernelTheoryAttribute()
    {
        if (!GemmMicroKernel.Wide)
            Skip = "the 512-bit GEMM kernels need AVX-512F, which this CPU lacks";
    }
}
