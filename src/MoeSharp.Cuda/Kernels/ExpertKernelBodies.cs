using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>Kernel bodies behind <see cref="IlgpuExpertKernels"/>: <c>HostSwiGlu</c>'s operation sequence.</summary>
internal static class ExpertKernelBodies
{
    /// <summary>Thread i: <c>a = g / (1 + exp(−g)) · u</c> (silu(g) ⊙ u).</summary>
    public static void SwiGluForward(Index1D i, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> activation)
    {
        float g = gate[i];
        activation[i] = g / (1f + MathF.Exp(-g)) * up[i];
    }
}
