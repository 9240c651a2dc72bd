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
        long first = TiledRowKernelBodies.FirstWord(within);
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
        var v = new TokenWords(a0, a1, b0, b1, c0, c1, d0, d1);
        // Up to eight slots' rows, then their scores, are loaded before the first store: one round trip each instead
        // of two per slot (ILGPU's generic stores keep a later load from moving above them).
        for (int slot = 0; slot < k; slot += 8)
        {
            int n = k - slot < 8 ? k - slot : 8,
                at0 = (t * k) + slot;
            int r0 = entryRow[at0],
                r1 = n > 1 ? entryRow[at0 + 1] : 0,
                r2 = n > 2 ? entryRow[at0 + 2] : 0,
                r3 = n > 3 ? entryRow[at0 + 3] : 0,
                r4 = n > 4 ? entryRow[at0 + 4] : 0,
                r5 = n > 5 ? entryRow[at0 + 5] : 0,
                r6 = n > 6 ? entryRow[at0 + 6] : 0,
                r7 = n > 7 ? entryRow[at0 + 7] : 0;
            bool scaled = hasScale != 0;
            float s0 = scaled ? scale[r0] : 1f,
                s1 = scaled && n > 1 ? scale[r1] : 1f,
                s2 = scaled && n > 2 ? scale[r2] : 1f,
                s3 = scaled && n > 3 ? scale[r3] : 1f,
                s4 = scaled && n > 4 ? scale[r4] : 1f,
                s5 = scaled && n > 5 ? scale[r5] : 1f,
                s6 = scaled && n > 6 ? scale[r6] : 1f,
                s7 = scaled && n > 7 ? scale[r7] : 1f;
            Put(f, padded, ((long)r0 * words) + first, v, s0, hasScale);
            if (n > 1)
                Put(f, padded, ((long)r1 * words) + first, v, s1, hasScale);
            if (n > 2)
                Put(f, padded, ((long)r2 * words) + first, v, s2, hasScale);
            if (n > 3)
                Put(f, padded, ((long)r3 * words) + first, v, s3, hasScale);
            if (n > 4)
                Put(f, padded, ((long)r4 * words) + first, v, s4, hasScale);
            if (n > 5)
                Put(f, padded, ((long)r5 * words) + first, v, s5, hasScale);
            if (n > 6)
                Put(f, padded, ((long)r6 * words) + first, v, s6, hasScale);
            if (n > 7)
                Put(f, padded, ((long)r7 * words) + first, v, s7, hasScale);
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

    /// <summary>A thread's eight float32 values of its token (low and high halves of four bfloat16 words).</summary>
    private readonly struct TokenWords(float a0, float a1, float b0, float b1, float c0, float c1, float d0, float d1)
    {
        public readonly float A0 = a0,
            A1 = a1,
            B0 = b0,
            B1 = b1,
            C0 = c0,
            C1 = c1,
            D0 = d0,
            D1 = d1;
    }

    /// <summary>The four bfloat16 words <c>to + m·32</c> of one placed row: the values times s when scaled.</summary>
    private static void Put<TFloat>(TFloat f, ArrayView<uint> padded, long to, TokenWords v, float s, int hasScale)
        where TFloat : struct, IStrictFloat
    {
        padded[to] = Word(f, v.A0, v.A1, s, hasScale);
        padded[to + 32] = Word(f, v.B0, v.B1, s, hasScale);
        padded[to + 64] = Word(f, v.C0, v.C1, s, hasScale);
        padded[to + 96] = Word(f, v.D0, v.D1, s, hasScale);
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
