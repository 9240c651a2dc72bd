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
        int block,
        ArrayView<ushort> stacked
    )
    {
        int e = i / (2 * block),
            r = i - (e * 2 * block);
        float v = r < block ? w1[(e * block) + r] : w3[(e * block) + r - block];
        stacked[i] = (ushort)BFloat16KernelBodies.Round(v);
    }

    /// <summary>
    /// Thread i: words <c>tile·128 + m·32 + lane</c> (m = 0..3) of stacked row r (expert <c>r / 2H</c>, its w1 rows
    /// then its w3 rows), each two float32 values of the source row rounded to bfloat16. Rows of a whole number of
    /// 128-word tiles (<paramref name="words"/> = D / 2): coalesced, one row lookup per 8 values.
    /// </summary>
    public static void StackRowsTiled(
        Index1D i,
        ArrayView<float> w1,
        ArrayView<float> w3,
        int hidden,
        int words,
        ArrayView<uint> stacked
    )
    {
        int perRow = words / 4,
            index = i;
        int r = index / perRow,
            within = index - (r * perRow);
        long first = TiledRowKernelBodies.FirstWord(within);
        int e = r / (2 * hidden),
            j = r - (e * 2 * hidden);
        long to = ((long)r * words) + first;
        bool up = j >= hidden;
        long at = ((((long)e * hidden) + (up ? j - hidden : j)) * words + first) * 2;
        for (int m = 0; m < 4; m++)
        {
            long f = at + (m * 64);
            float low = up ? w3[f] : w1[f],
                high = up ? w3[f + 1] : w1[f + 1];
            stacked[to + (m * 32)] = BFloat16KernelBodies.Round(low) | (BFloat16KernelBodies.Round(high) << 16);
        }
    }

    /// <summary>Thread i: words <c>tile·128 + m·32 + lane</c> (m = 0..3) of a bfloat16 copy of
    /// <paramref name="source"/> (a whole number of 256-value tiles), two rounded values per word.</summary>
    public static void ToBFloat16Tiled(Index1D i, ArrayView<float> source, ArrayView<uint> destination)
    {
        int index = i;
        long first = TiledRowKernelBodies.FirstWord(index);
        for (int m = 0; m < 4; m++)
        {
            long w = first + (m * 32);
            destination[w] =
                BFloat16KernelBodies.Round(source[2 * w]) | (BFloat16KernelBodies.Round(source[(2 * w) + 1]) << 16);
        }
    }

    /// <summary>Thread i of <c>rows·H</c>: <c>a = silu(g) ⊙ u</c> with g and u from row <c>i / H</c> of the stacked
    /// products (gate in the first H values, up in the next H), rounded to bfloat16.</summary>
    public static void SwiGluForward(Index1D i, ArrayView<float> gateUp, int hidden, ArrayView<ushort> activation)
    {
        int row = i / hidden,
            column = i - (row * hidden);
        long at = ((long)row * 2 * hidden) + column;
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
        int row = i / hidden,
            column = i - (row * hidden);
        long at = ((long)row * 2 * hidden) + column;
        float g = gateUp[at];
        float sig = 1f / (1f + MathF.Exp(-g));
        float da = gradActivation[i];
        gradGateUp[at + hidden] = (ushort)BFloat16KernelBodies.Round(da * g * sig);
        gradGateUp[at] = (ushort)BFloat16KernelBodies.Round(da * gateUp[at + hidden] * sig * (1f + (g * (1f - sig))));
    }

    /// <summary>
    /// Thread i: output words <c>tile·128 + m·32 + lane</c> (m = 0..3) of padded row r, each two float32 values of the
    /// group's source row rounded to bfloat16, or zeros after the group's rows (<c>startAndCount</c>: the groups'
    /// first rows, then their counts). Rows of a whole number of tiles (<paramref name="words"/> a multiple of 128).
    /// </summary>
    public static void PadRowsTiled(
        Index1D i,
        ArrayView<float> source,
        ArrayView<int> startAndCount,
        int groups,
        int capacity,
        int words,
        ArrayView<uint> padded
    )
    {
        int perRow = words / 4,
            index = i;
        int r = index / perRow,
            within = index - (r * perRow);
        long first = TiledRowKernelBodies.FirstWord(within);
        int g = r / capacity,
            k = r - (g * capacity);
        long to = ((long)r * words) + first;
        if (k >= startAndCount[groups + g])
        {
            for (int m = 0; m < 4; m++)
                padded[to + (m * 32)] = 0u;
            return;
        }
        long at = (((long)(startAndCount[g] + k) * words) + first) * 2;
        for (int m = 0; m < 4; m++)
        {
            uint low = BFloat16KernelBodies.Round(source[at + (m * 64)]),
                high = BFloat16KernelBodies.Round(source[at + (m * 64) + 1]);
            padded[to + (m * 32)] = low | (high << 16);
        }
    }

    /// <summary>
    /// Thread i: float32 words <c>tile·128 + m·32 + lane</c> of padded row r copied (or added) to the group's row of
    /// <paramref name="destination"/>; padding rows are skipped. <paramref name="columns"/> a multiple of 128.
    /// </summary>
    public static void UnpadRowsTiled(
        Index1D i,
        ArrayView<float> padded,
        ArrayView<int> startAndCount,
        int groups,
        int capacity,
        int columns,
        ArrayView<float> destination,
        int accumulate
    )
    {
        int perRow = columns / 4,
            index = i;
        int r = index / perRow,
            within = index - (r * perRow);
        long first = TiledRowKernelBodies.FirstWord(within);
        int g = r / capacity,
            k = r - (g * capacity);
        if (k >= startAndCount[groups + g])
            return;
        long from = ((long)r * columns) + first,
            to = ((long)(startAndCount[g] + k) * columns) + first;
        for (int m = 0; m < 4; m++)
        {
            float v = padded[from + (m * 32)];
            destination[to + (m * 32)] = accumulate != 0 ? destination[to + (m * 32)] + v : v;
        }
    }

    /// <summary>
    /// Thread i: <see cref="SwiGluForward"/> on columns <c>tile·128 + m·32 + lane</c> (m = 0..3) of activation row r,
    /// for <paramref name="hidden"/> a multiple of 128 (coalesced 128-byte accesses, a quarter of the index math).
    /// All eight loads come before the first store, so a thread keeps them all in flight (the compiler may not move
    /// a load above a store to a view that could alias it).
    /// </summary>
    public static void SwiGluForwardTiled(Index1D i, ArrayView<float> gateUp, int hidden, ArrayView<ushort> activation)
    {
        int perRow = hidden / 4,
            index = i;
        int r = index / perRow,
            within = index - (r * perRow);
        long first = TiledRowKernelBodies.FirstWord(within);
        long at = ((long)r * 2 * hidden) + first,
            to = ((long)r * hidden) + first,
            up = at + hidden;
        float g0 = gateUp[at],
            g1 = gateUp[at + 32],
            g2 = gateUp[at + 64],
            g3 = gateUp[at + 96];
        float u0 = gateUp[up],
            u1 = gateUp[up + 32],
            u2 = gateUp[up + 64],
            u3 = gateUp[up + 96];
        activation[to] = SwiGlu(g0, u0);
        activation[to + 32] = SwiGlu(g1, u1);
        activation[to + 64] = SwiGlu(g2, u2);
        activation[to + 96] = SwiGlu(g3, u3);
    }

    /// <summary>Thread i: <see cref="SwiGluBackward"/> on the columns <see cref="SwiGluForwardTiled"/> maps it
    /// to, its twelve loads before its first store.</summary>
    public static void SwiGluBackwardTiled(
        Index1D i,
        ArrayView<float> gradActivation,
        ArrayView<float> gateUp,
        int hidden,
        ArrayView<ushort> gradGateUp
    )
    {
        int perRow = hidden / 4,
            index = i;
        int r = index / perRow,
            within = index - (r * perRow);
        long first = TiledRowKernelBodies.FirstWord(within);
        long at = ((long)r * 2 * hidden) + first,
            from = ((long)r * hidden) + first,
            up = at + hidden;
        float g0 = gateUp[at],
            g1 = gateUp[at + 32],
            g2 = gateUp[at + 64],
            g3 = gateUp[at + 96];
        float u0 = gateUp[up],
            u1 = gateUp[up + 32],
            u2 = gateUp[up + 64],
            u3 = gateUp[up + 96];
        float d0 = gradActivation[from],
            d1 = gradActivation[from + 32],
            d2 = gradActivation[from + 64],
            d3 = gradActivation[from + 96];
        float s0 = Sigmoid(g0),
            s1 = Sigmoid(g1),
            s2 = Sigmoid(g2),
            s3 = Sigmoid(g3);
        gradGateUp[up] = GradUp(d0, g0, s0);
        gradGateUp[up + 32] = GradUp(d1, g1, s1);
        gradGateUp[up + 64] = GradUp(d2, g2, s2);
        gradGateUp[up + 96] = GradUp(d3, g3, s3);
        gradGateUp[at] = GradGate(d0, g0, u0, s0);
        gradGateUp[at + 32] = GradGate(d1, g1, u1, s1);
        gradGateUp[at + 64] = GradGate(d2, g2, u2, s2);
        gradGateUp[at + 96] = GradGate(d3, g3, u3, s3);
    }

    /// <summary><c>silu(g)·u</c> rounded to bfloat16, in <see cref="SwiGluForward"/>'s operation order.</summary>
    private static ushort SwiGlu(float g, float u) => (ushort)BFloat16KernelBodies.Round(g / (1f + MathF.Exp(-g)) * u);

    /// <summary><c>1 / (1 + exp(−g))</c>.</summary>
    private static float Sigmoid(float g) => 1f / (1f + MathF.Exp(-g));

    /// <summary>The up gradient <c>da·g·σ(g)</c> rounded to bfloat16.</summary>
    private static ushort GradUp(float da, float g, float sig) => (ushort)BFloat16KernelBodies.Round(da * g * sig);

    /// <summary>The gate gradient <c>da·u·σ(g)·(1 + g·(1 − σ(g)))</c> rounded to bfloat16.</summary>
    private static ushort GradGate(float da, float g, float u, float sig) =>
        (ushort)BFloat16KernelBodies.Round(da * u * sig * (1f + (g * (1f - sig))));

    /// <summary>Thread i: <c>destination[i] = source[i]</c> widened from bfloat16 (for products on accelerators
    /// without cuBLAS).</summary>
    public static void Widen(Index1D i, ArrayView<ushort> source, ArrayView<float> destination) =>
        destination[i] = BFloat16KernelBodies.Low(source[i]);
}
