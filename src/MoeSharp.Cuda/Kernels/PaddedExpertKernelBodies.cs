using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Kernel bodies behind <see cref="IlgpuLayerKernels"/>'s padded experts (<c>IPaddedExpertKernels</c>): the weights
/// stacked into bfloat16 and SwiGLU over the stacked gate-and-up products, reading float32 and writing bfloat16 (the
/// next product's operand), with <c>HostSwiGlu</c>'s operation sequence before the rounding.
/// </summary>
internal static class PaddedExpertKernelBodies
{
    /// <summary>Thread i of <c>G·2·block</c>: element i of the stacked bfloat16 weights, expert e's
    /// <paramref name="block"/> values of w1 then of w3.</summary>
    public static void StackToBFloat16(
        Index1D i,
        ArrayView<float> w1,
        ArrayView<float> w3,
        long block,
        ArrayView<ushort> stacked
    )
    {
        long e = i / (2 * block),
            r = i - (e * 2 * block);
        float v = r < block ? w1[(e * block) + r] : w3[(e * block) + r - block];
        stacked[i] = (ushort)BFloat16KernelBodies.Round(v);
    }

    /// <summary>Thread i of <c>rows·H</c>: <c>a = silu(g) ⊙ u</c> with g and u from row <c>i / H</c> of the stacked
    /// products (gate in the first H values, up in the next H), rounded to bfloat16.</summary>
    public static void SwiGluForward(Index1D i, ArrayView<float> gateUp, int hidden, ArrayView<ushort> activation)
    {
        long row = i / hidden,
            column = i - (row * hidden),
            at = (row * 2 * hidden) + column;
        float g = gateUp[at];
        activation[i] = (ushort)BFloat16KernelBodies.Round(g / (1f + MathF.Exp(-g)) * gateUp[at + hidden]);
    }

    /// <summary>Thread i of <c>rows·H</c>: <c>HostSwiGlu.Backward</c>'s element, the gate and up gradients written
    /// stacked like the products, rounded to bfloat16.</summary>
    public static void SwiGluBackward(
        Index1D i,
        ArrayView<float> gradActivation,
        ArrayView<float> gateUp,
        int hidden,
        ArrayView<ushort> gradGateUp
    )
    {
        long row = i / hidden,
            column = i - (row * hidden),
            at = (row * 2 * hidden) + column;
        float g = gateUp[at];
        float sig = 1f / (1f + MathF.Exp(-g));
        float da = gradActivation[i];
        gradGateUp[at + hidden] = (ushort)BFloat16KernelBodies.Round(da * g * sig);
        gradGateUp[at] = (ushort)BFloat16KernelBodies.Round(da * gateUp[at + hidden] * sig * (1f + (g * (1f - sig))));
    }

    /// <summary>Thread i: <c>destination[i] = source[i]</c> widened from bfloat16 (for products on accelerators
    /// without cuBLAS).</summary>
    public static void Widen(Index1D i, ArrayView<ushort> source, ArrayView<float> destination) =>
        destination[i] = BFloat16KernelBodies.Low(source[i]);
}
