using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The dispatch gather in token order on the GPU (<c>IMoeKernels.ScatterTokenRows</c>): each token row is read once
/// and written to its K rows, instead of each destination row reading its token (K reads of every token row, which
/// miss the L2 cache once the tokens outgrow it). Rows are handled as 32-bit words in the coalesced tile layout of
/// <see cref="BFloat16KernelBodies.GatherRowsTiled{TFloat}"/>: a float32 value, or a pair of bfloat16 values.
/// </summary>
internal static class TokenScatterKernelBodies
{
    /// <summary>
    /// Thread i is words <c>tile·128 + m·32 + lane</c> (m = 0..3) of token t: read once, written (times the row's score
    /// when <c>hasScale</c> is set: one float32 product rounded once to the row dtype) to the token's K rows
    /// (<c>entryRow[t·k + slot]</c>). <c>bfloat16</c> is 1 when a word holds two bfloat16 values, 0 for one float32.
    /// </summary>
    public static void ScatterTokensTiled<TFloat>(Index1D i, ArrayView<uint> source, int sourceRowOffset, ArrayView<int> entryRow, int k,
        ArrayView<float> scale, int hasScale, int bfloat16, int words, ArrayView<uint> destination)
        where TFloat : struct, IStrictFloat
    {
        int perRow = words / 4, index = i;
        int t = index / perRow, within = index - t * perRow;
        int first = within / 32 * BFloat16KernelBodies.TileWords + within % 32;
        long at = (long)(sourceRowOffset + t) * words + first;
        uint w0 = source[at], w1 = source[at + 32], w2 = source[at + 64], w3 = source[at + 96];
        for (int slot = 0; slot < k; slot++)
        {
            int r = entryRow[t * k + slot];
            long to = (long)r * words + first;
            if (hasScale == 0)
            {
                destination[to] = w0;
                destination[to + 32] = w1;
                destination[to + 64] = w2;
                destination[to + 96] = w3;
                continue;
            }
            float s = scale[r];
            destination[to] = Scale<TFloat>(w0, s, bfloat16);
            destination[to + 32] = Scale<TFloat>(w1, s, bfloat16);
            destination[to + 64] = Scale<TFloat>(w2, s, bfloat16);
            destination[to + 96] = Scale<TFloat>(w3, s, bfloat16);
        }
    }

    /// <summary>Thread i (a word quad of row r, as above): zeros where no token lands in row r (SP pad entries, alignment rows).</summary>
    public static void ClearTokenlessRowsTiled(Index1D i, ArrayView<int> rowToken, int words, ArrayView<uint> destination)
    {
        int perRow = words / 4, index = i;
        int r = index / perRow, within = index - r * perRow;
        if (rowToken[r] >= 0) return;
        long to = (long)r * words + within / 32 * BFloat16KernelBodies.TileWords + within % 32;
        destination[to] = 0u;
        destination[to + 32] = 0u;
        destination[to + 64] = 0u;
        destination[to + 96] = 0u;
    }

    private static uint Scale<TFloat>(uint word, float s, int bfloat16) where TFloat : struct, IStrictFloat
        => bfloat16 != 0
            ? BFloat16KernelBodies.ScalePair<TFloat>(word, s)
            : Interop.FloatAsInt(default(TFloat).Mul(Interop.IntAsFloat(word), s));
}
