using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The dispatch gather written straight into the padded experts' bfloat16 rows (<c>IPaddedExpertKernels
/// .PlaceTokenRows</c>): float32 token rows, each value times its row's score when there is one (one float32 product,
/// <see cref="IStrictFloat"/>), rounded once to bfloat16 with <see cref="BFloat16KernelBodies.Round"/>. That is the
/// value the token scatter into float32 rows followed by <c>PadRows</c> gives, bit for bit, in one pass instead of
/// two (and without the float32 routed rows between them).
/// </summary>
internal static class PlacedRowKernelBodies
{
    /// <summary>
    /// Thread i: bfloat16 words <c>tile·128 + m·32 + lane</c> (m = 0..3) of token t (rows of <paramref name="words"/>
    /// words, a multiple of 128): its eight float32 values read once and written to the token's K rows
    /// (<c>entryRow[t·k + slot]</c>), scaled when <paramref name="hasScale"/> is set. Coalesced: a warp reads 256
    /// contiguous bytes and writes 128.
    /// </summary>
    public static void PlaceTokensTiled<TFloat>(
        Index1D i,
        ArrayView<float> source,
        int sourceRowOffset,
        ArrayView<int> entryRow,
        int k,
        ArrayView<float> scale,
        int hasScale,
        int words,
        ArrayView<uint> padded
    )
        where TFloat : struct, IStrictFloat
    {
        int perRow = words / 4,
            index = i;
        int t = index / perRow,
            within = index - (t * perRow);
        int first = (within / 32 * PaddedExpertKernelBodies.TileWords) + (within % 32);
        long at = ((((long)sourceRowOffset + t) * words) + first) * 2;
        float a0 = source[at],
            a1 = source[at + 1],
            b0 = source[at + 64],
            b1 = source[at + 65],
            c0 = source[at + 128],
            c1 = source[at + 129],
            d0 = source[at + 192],
            d1 = source[at + 193];
        TFloat f = default;
        for (int slot = 0; slot < k; slot++)
        {
            int r = entryRow[(t * k) + slot];
            long to = ((long)r * words) + first;
            float s = hasScale != 0 ? scale[r] : 1f;
            padded[to] = Word(f, a0, a1, s, hasScale);
            padded[to + 32] = Word(f, b0, b1, s, hasScale);
            padded[to + 64] = Word(f, c0, c1, s, hasScale);
            padded[to + 96] = Word(f, d0, d1, s, hasScale);
        }
    }

    /// <summary>
    /// Thread i of <c>rows·columns</c>: bfloat16 element i of the padded rows, from token <c>rowToken[r]</c> of
    /// <paramref name="source"/> (times <c>scale[r]</c> when <paramref name="hasScale"/> is set), or zero where no
    /// token lands in row r (SP pad entries, alignment and capacity padding). Any width.
    /// </summary>
    public static void PlaceRows<TFloat>(
        Index1D i,
        ArrayView<float> source,
        int sourceRowOffset,
        ArrayView<int> rowToken,
        ArrayView<float> scale,
        int hasScale,
        int columns,
        ArrayView<ushort> padded
    )
        where TFloat : struct, IStrictFloat
    {
        int r = i / columns,
            c = i - (r * columns);
        int t = rowToken[r];
        if (t < 0)
        {
            padded[i] = 0;
            return;
        }
        float v = source[(((long)sourceRowOffset + t) * columns) + c];
        if (hasScale != 0)
            v = default(TFloat).Mul(v, scale[r]);
        padded[i] = (ushort)BFloat16KernelBodies.Round(v);
    }

    private static uint Word<TFloat>(TFloat f, float low, float high, float s, int hasScale)
        where TFloat : struct, IStrictFloat
    {
        if (hasScale != 0)
        {
            low = f.Mul(low, s);
            high = f.Mul(high, s);
        }
        return BFloat16KernelBodies.Round(low) | (BFloat16KernelBodies.Round(high) << 16);
    }
}
