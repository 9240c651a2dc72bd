using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The row kernels of <see cref="IlgpuMoeKernels"/> for rows of a whole number of <see cref="TileWords"/>-word tiles,
/// laid out for coalescing: thread i handles the words <c>tile·128 + m·32 + lane</c> (m = 0..3) of its row, so each of
/// a warp's four loads and stores covers 128 contiguous bytes (a 16-byte pack per thread, as in
/// <see cref="PackedRowKernelBodies"/>, splits into four strided 4-byte accesses). Written once over the row type.
/// </summary>
/// <remarks>
/// The packed and tiled kernels stay two families: the row type is a type parameter of both, but the thread-to-word
/// maps differ (and with them which shapes each can take), and each is chosen by the row length, not by the type.
/// </remarks>
internal static class TiledRowKernelBodies
{
    /// <summary>Words a warp's tile spans: 32 threads × 4 words (128 float32 or 256 bfloat16 values).</summary>
    public const int TileWords = 128;

    /// <summary>
    /// The first of the words <c>tile·128 + m·32 + lane</c> (m = 0..3) that thread <paramref name="thread"/> of a row
    /// (or of a flat run of whole tiles) handles: tile <c>thread / 32</c>, lane <c>thread mod 32</c>.
    /// </summary>
    public static long FirstWord(int thread) => ((long)(thread / 32) * TileWords) + (thread % 32);

    /// <summary>
    /// Thread i is words <c>tile·128 + m·32 + lane</c> of destination row r: the source row's words, each value scaled
    /// and rounded when <paramref name="hasScale"/> is set, or zeros where <c>rowOf[r] &lt; 0</c>.
    /// </summary>
    public static void GatherRows<TFloat, TRow>(
        Index1D i,
        ArrayView<uint> source,
        int sourceRowOffset,
        ArrayView<int> rowOf,
        ArrayView<float> scale,
        int hasScale,
        int words,
        ArrayView<uint> destination
    )
        where TFloat : struct, IStrictFloat
        where TRow : struct, IDeviceWord
    {
        int perRow = words / 4,
            index = i;
        int r = index / perRow,
            within = index - r * perRow;
        int first = within / 32 * TileWords + within % 32;
        long to = (long)r * words + first;
        int from = rowOf[r];
        if (from < 0)
        {
            for (int m = 0; m < 4; m++)
                destination[to + m * 32] = 0u;
            return;
        }
        long at = (long)(from + sourceRowOffset) * words + first;
        uint w0 = source[at],
            w1 = source[at + 32],
            w2 = source[at + 64],
            w3 = source[at + 96];
        if (hasScale != 0)
        {
            float s = scale[r];
            w0 = RowWords.Scale<TFloat, TRow>(w0, s);
            w1 = RowWords.Scale<TFloat, TRow>(w1, s);
            w2 = RowWords.Scale<TFloat, TRow>(w2, s);
            w3 = RowWords.Scale<TFloat, TRow>(w3, s);
        }
        destination[to] = w0;
        destination[to + 32] = w1;
        destination[to + 64] = w2;
        destination[to + 96] = w3;
    }

    /// <summary>
    /// <see cref="PackedRowKernelBodies.GatherReduce{TFloat, TRow}"/> in the tiled layout: thread i sums the words
    /// <c>tile·128 + m·32 + lane</c> of its token, each value's terms in slot order in a float32 accumulator, rounded
    /// once.
    /// </summary>
    public static void GatherReduce<TFloat, TRow>(
        Index1D i,
        ArrayView<uint> rows,
        ArrayView<int> positions,
        int k,
        ArrayView<float> scale,
        int hasScale,
        ArrayView<uint> initial,
        int hasInitial,
        int words,
        ArrayView<uint> destination,
        int destinationOffset
    )
        where TFloat : struct, IStrictFloat
        where TRow : struct, IDeviceWord
    {
        int perRow = words / 4,
            index = i;
        int t = index / perRow,
            within = index - t * perRow;
        int first = within / 32 * TileWords + within % 32;
        long own = (long)t * words + first;
        var acc = new RowWords.PackSums<TFloat, TRow>(
            hasInitial != 0 ? new UInt4(initial[own], initial[own + 32], initial[own + 64], initial[own + 96]) : default
        );
        // Four slots' positions, then their sixteen words, are loaded before any is added: at K = 8 two round trips
        // to memory per pair of loads instead of four (each slot's terms are still added in slot order).
        for (int slot = 0; slot < k; slot += 4)
        {
            int p0 = positions[t * k + slot];
            int p1 = slot + 1 < k ? positions[t * k + slot + 1] : -1;
            int p2 = slot + 2 < k ? positions[t * k + slot + 2] : -1;
            int p3 = slot + 3 < k ? positions[t * k + slot + 3] : -1;
            UInt4 v0 = Words(rows, p0, words, first),
                v1 = Words(rows, p1, words, first),
                v2 = Words(rows, p2, words, first),
                v3 = Words(rows, p3, words, first);
            if (p0 >= 0)
                acc.Add(v0, hasScale != 0 ? scale[p0] : 1f, hasScale);
            if (p1 >= 0)
                acc.Add(v1, hasScale != 0 ? scale[p1] : 1f, hasScale);
            if (p2 >= 0)
                acc.Add(v2, hasScale != 0 ? scale[p2] : 1f, hasScale);
            if (p3 >= 0)
                acc.Add(v3, hasScale != 0 ? scale[p3] : 1f, hasScale);
        }
        UInt4 sum = acc.Round();
        long to = (long)(destinationOffset + t) * words + first;
        destination[to] = sum.A;
        destination[to + 32] = sum.B;
        destination[to + 64] = sum.C;
        destination[to + 96] = sum.D;
    }

    /// <summary>The four words <c>first + m·32</c> of row <paramref name="p"/>, or zeros where p is -1.</summary>
    private static UInt4 Words(ArrayView<uint> rows, int p, int words, int first)
    {
        long at = (long)p * words + first;
        return p >= 0 ? new UInt4(rows[at], rows[at + 32], rows[at + 64], rows[at + 96]) : default;
    }
}
