using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Kernel bodies behind <see cref="IlgpuLayerKernels"/>: the backward element-wise functions, row addition, the
/// AdamW step and a plain strided matrix product (for accelerators without cuBLAS), each the host's operation
/// sequence.
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

    /// <summary>Thread i: one AdamW update of element i (the host's order of operations).</summary>
    public static void AdamW(
        Index1D i,
        ArrayView<float> value,
        ArrayView<float> grad,
        ArrayView<float> expAvg,
        ArrayView<float> expAvgSq,
        float beta1,
        float beta2,
        float stepSize,
        float bias2Sqrt,
        float epsilon,
        float decay
    )
    {
        AdamWElement(i, value, grad, expAvg, expAvgSq, beta1, beta2, stepSize, bias2Sqrt, epsilon, decay);
    }

    /// <summary>
    /// Thread i: <see cref="AdamW"/> on elements <c>tile·128 + m·32 + lane</c> (m = 0..3) of tensors of a whole
    /// number of 128-element tiles, so each of a warp's accesses covers 128 contiguous bytes and a quarter of the
    /// threads do the index arithmetic.
    /// </summary>
    public static void AdamWTiled(
        Index1D i,
        ArrayView<float> value,
        ArrayView<float> grad,
        ArrayView<float> expAvg,
        ArrayView<float> expAvgSq,
        float beta1,
        float beta2,
        float stepSize,
        float bias2Sqrt,
        float epsilon,
        float decay
    )
    {
        int index = i;
        long first = ((long)(index / 32) * 128) + (index % 32);
        for (int m = 0; m < 4; m++)
        {
            AdamWElement(
                first + (m * 32),
                value,
                grad,
                expAvg,
                expAvgSq,
                beta1,
                beta2,
                stepSize,
                bias2Sqrt,
                epsilon,
                decay
            );
        }
    }

    /// <summary>Thread i: <see cref="AdamW"/> on element i, its new value also written rounded to bfloat16 at
    /// <paramref name="map"/>'s place in <paramref name="copy"/>.</summary>
    public static void AdamWWithCopy(
        Index1D i,
        ArrayView<float> value,
        ArrayView<float> grad,
        ArrayView<float> expAvg,
        ArrayView<float> expAvgSq,
        ArrayView<ushort> copy,
        CopyMap map,
        float beta1,
        float beta2,
        float stepSize,
        float bias2Sqrt,
        float epsilon,
        float decay
    )
    {
        float updated = AdamWElement(
            i,
            value,
            grad,
            expAvg,
            expAvgSq,
            beta1,
            beta2,
            stepSize,
            bias2Sqrt,
            epsilon,
            decay
        );
        copy[map.At(i)] = (ushort)BFloat16KernelBodies.Round(updated);
    }

    /// <summary><see cref="AdamWWithCopy"/> in <see cref="AdamWTiled"/>'s element order (tensors of whole
    /// 128-element tiles).</summary>
    public static void AdamWWithCopyTiled(
        Index1D i,
        ArrayView<float> value,
        ArrayView<float> grad,
        ArrayView<float> expAvg,
        ArrayView<float> expAvgSq,
        ArrayView<ushort> copy,
        CopyMap map,
        float beta1,
        float beta2,
        float stepSize,
        float bias2Sqrt,
        float epsilon,
        float decay
    )
    {
        int index = i;
        int first = ((index / 32) * 128) + (index % 32);
        // The caller guarantees Block % 128 == 0, so the 128-value tile lies in one block: one division per thread
        // (the 64-bit division and remainder per value cost more than the update itself).
        long copyFirst = map.At(first);
        for (int m = 0; m < 4; m++)
        {
            int at = first + (m * 32);
            float updated = AdamWElement(
                at,
                value,
                grad,
                expAvg,
                expAvgSq,
                beta1,
                beta2,
                stepSize,
                bias2Sqrt,
                epsilon,
                decay
            );
            copy[copyFirst + (m * 32)] = (ushort)BFloat16KernelBodies.Round(updated);
        }
    }

    /// <summary>Where value element i's bfloat16 copy goes: <c>(i / Block)·Stride + Offset + i mod Block</c>
    /// (<c>BFloat16CopyLayout</c> on the device).</summary>
    public readonly struct CopyMap(int block, int stride, int offset)
    {
        private readonly int _block = block,
            _stride = stride,
            _offset = offset;

        /// <summary>The copy's index of value element <paramref name="i"/> (a value tensor has fewer than 2³¹
        /// elements, so 32-bit division: a 64-bit one is emulated on the GPU).</summary>
        public long At(int i)
        {
            int block = i / _block;
            return ((long)block * _stride) + _offset + (i - (block * _block));
        }
    }

    private static float AdamWElement(
        long i,
        ArrayView<float> value,
        ArrayView<float> grad,
        ArrayView<float> expAvg,
        ArrayView<float> expAvgSq,
        float beta1,
        float beta2,
        float stepSize,
        float bias2Sqrt,
        float epsilon,
        float decay
    )
    {
        float g = grad[i];
        float m = (beta1 * expAvg[i]) + ((1f - beta1) * g);
        float v = (beta2 * expAvgSq[i]) + ((1f - beta2) * g * g);
        expAvg[i] = m;
        expAvgSq[i] = v;
        float denom = (MathF.Sqrt(v) / bias2Sqrt) + epsilon;
        float updated = (value[i] * decay) - (stepSize * m / denom);
        value[i] = updated;
        return updated;
    }
}
