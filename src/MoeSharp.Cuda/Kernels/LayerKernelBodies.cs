using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Kernel bodies behind <see cref="IlgpuLayerKernels"/>: the backward element-wise functions, row addition and a
/// plain strided matrix product (for accelerators without cuBLAS), each the host's operation sequence (AdamW:
/// <see cref="AdamWKernelBodies"/>).
/// </summary>
internal static class LayerKernelBodies
{
    /// <summary>
    /// Thread i: output element <c>(i / n, i % n)</c> of <c>C (+)= Σ_p A[row, p] · B[p, column]</c>, one chain in
    /// ascending p,
    /// with A and B addressed by strides (row/reduction for A, column/reduction for B) so the three layouts of the
    /// layer share one kernel.
    /// </summary>
    public static void StridedProduct(
        Index1D i,
        ArrayView<float> a,
        int aStart,
        int aRowStride,
        int aReduceStride,
        ArrayView<float> b,
        int bStart,
        int bColumnStride,
        int bReduceStride,
        ArrayView<float> c,
        int cStart,
        int n,
        int k,
        int accumulate
    )
    {
        int row = i / n,
            column = i % n;
        float sum = accumulate != 0 ? c[cStart + i] : 0f;
        int at = aStart + row * aRowStride,
            bt = bStart + column * bColumnStride;
        for (int p = 0; p < k; p++)
            sum += a[at + p * aReduceStride] * b[bt + p * bReduceStride];
        c[cStart + i] = sum;
    }

    /// <summary>Thread i: <c>source[start + i]</c> rounded to bfloat16 (its 16 bits), for products with bfloat16
    /// inputs.</summary>
    public static void ToBFloat16(Index1D i, ArrayView<float> source, int start, ArrayView<ushort> destination) =>
        destination[i] = (ushort)BFloat16KernelBodies.Round(source[start + i]);

    /// <summary>
    /// Thread j of <c>groups·capacity·columns</c>: element j of the padded bfloat16 layout, where group g's rows
    /// (<c>startAndCount[g]</c> the first row of <paramref name="source"/>, <c>startAndCount[groups + g]</c> their
    /// number)
    /// occupy rows <c>[g·capacity, g·capacity + count)</c>, rounded to bfloat16, and every other row is zero.
    /// </summary>
    public static void PadToBFloat16(
        Index1D j,
        ArrayView<float> source,
        ArrayView<int> startAndCount,
        int groups,
        int capacity,
        int columns,
        ArrayView<ushort> padded
    )
    {
        int row = j / columns,
            column = j - (row * columns),
            g = row / capacity,
            r = row - (g * capacity);
        padded[j] =
            r < startAndCount[groups + g]
                ? (ushort)BFloat16KernelBodies.Round(source[((long)(startAndCount[g] + r) * columns) + column])
                : (ushort)0;
    }

    /// <summary>Thread j: the inverse of <see cref="PadToBFloat16"/> for float32 rows, written (or added) into
    /// <paramref name="destination"/>.</summary>
    public static void UnpadInto(
        Index1D j,
        ArrayView<float> padded,
        ArrayView<int> startAndCount,
        int groups,
        int capacity,
        int columns,
        ArrayView<float> destination,
        int accumulate
    )
    {
        int row = j / columns,
            column = j - (row * columns),
            g = row / capacity,
            r = row - (g * capacity);
        if (r >= startAndCount[groups + g])
            return;
        long d = ((long)(startAndCount[g] + r) * columns) + column;
        destination[d] = accumulate != 0 ? destination[d] + padded[j] : padded[j];
    }

    /// <summary>Thread i: one more token for expert <c>ids[i]</c> (ids outside <c>[0, counts.Length)</c> are not
    /// counted).</summary>
    public static void CountIds(Index1D i, ArrayView<long> ids, ArrayView<long> counts)
    {
        long id = ids[i];
        if (id >= 0 && id < counts.Length)
            Atomic.Add(ref counts[id], 1L);
    }

    /// <summary>Thread i: <c>destination[i] = source[i]</c> (bfloat16 bits) widened to float32, added to it when
    /// <paramref name="accumulate"/> is 1.</summary>
    public static void WidenBFloat16(Index1D i, ArrayView<ushort> source, ArrayView<float> destination, int accumulate)
    {
        float value = BFloat16KernelBodies.Low(source[i]);
        destination[i] = accumulate != 0 ? destination[i] + value : value;
    }

    /// <summary>Thread i: <c>source[start + i]</c> rounded to bfloat16 and widened back (the strided product's bfloat16
    /// inputs).</summary>
    public static void RoundToBFloat16(Index1D i, ArrayView<float> source, int start, ArrayView<float> destination) =>
        destination[i] = BFloat16KernelBodies.Low(BFloat16KernelBodies.Round(source[start + i]));

    /// <summary>Thread i: <c>HostSwiGlu.Backward</c>'s element i.</summary>
    public static void SwiGluBackward(
        Index1D i,
        ArrayView<float> gradActivation,
        ArrayView<float> gate,
        ArrayView<float> up,
        ArrayView<float> gradGate,
        ArrayView<float> gradUp
    )
    {
        float g = gate[i];
        float sig = 1f / (1f + MathF.Exp(-g));
        float da = gradActivation[i];
        gradUp[i] = da * g * sig;
        gradGate[i] = da * up[i] * sig * (1f + (g * (1f - sig)));
    }

    /// <summary>Thread i: sigmoid backward, <c>dz = ds · s · (1 − s)</c>.</summary>
    public static void SigmoidBackward(
        Index1D i,
        ArrayView<float> scores,
        ArrayView<float> gradScores,
        ArrayView<float> gradLogits
    ) => gradLogits[i] = gradScores[i] * scores[i] * (1f - scores[i]);

    /// <summary>Thread i: <c>into[start + i] += rows[i]</c>.</summary>
    public static void AddInto(Index1D i, ArrayView<float> into, int start, ArrayView<float> rows) =>
        into[start + i] += rows[i];

    /// <summary>
    /// Thread i: <see cref="AddInto"/> on values <c>c·128 + m·32 + lane</c> (m = 0..3) of chunk <c>c = i / 32</c>,
    /// for a whole number of 128-value chunks: each access of a warp covers 128 contiguous bytes, and a thread's
    /// eight loads come before its first store (the compiler may not move a load above a store to a view that could
    /// alias it).
    /// </summary>
    public static void AddIntoTiled(Index1D i, ArrayView<float> into, int start, ArrayView<float> rows)
    {
        int index = i;
        long first = TiledRowKernelBodies.FirstWord(index),
            to = start + first;
        float r0 = rows[first],
            r1 = rows[first + 32],
            r2 = rows[first + 64],
            r3 = rows[first + 96];
        float a0 = into[to],
            a1 = into[to + 32],
            a2 = into[to + 64],
            a3 = into[to + 96];
        into[to] = a0 + r0;
        into[to + 32] = a1 + r1;
        into[to + 64] = a2 + r2;
        into[to + 96] = a3 + r3;
    }
}
