using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The dispatch gather in token order on the GPU (<c>IRowKernels.ScatterTokenRows</c>): each token row is read once
/// and written to its K rows, instead of each destination row reading its token (K reads of every token row, which
/// miss the L2 cache once the tokens outgrow it). Rows are handled as 32-bit words in the coalesced tile layout of
/// <see cref="TiledRowKernelBodies"/>, generic over the row type like them.
/// </summary>
internal static class TokenScatterKernelBodies
{
    /// <summary>
    /// Thread i is words <c>tile·128 + m·32 + lane</c> (m = 0..3) of token t: read once, written (times the row's score
    /// when <c>hasScale</c> is set: one float32 product rounded once to the row type) to the token's K rows
    /// (<c>entryRow[t·k + slot]</c>).
    /// </summary>
    public static void ScatterTokensTiled<TFloat, TRow>(
        Index1D i,
        ArrayView<uint> source,
        int sourceRowOffset,
        ArrayView<int> entryRow,
        int k,
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
        int t = index / perRow,
            within = index - t * perRow;
        int first = within / 32 * TiledRowKernelBodies.TileWords + within % 32;
        long at = (long)(sourceRowOffset + t) * words + first;
        uint w0 = source[at],
            w1 = source[at + 32],
            w2 = source[at + 64],
            w3 = source[at + 96];
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
            destination[to] = RowWords.Scale<TFloat, TRow>(w0, s);
            destination[to + 32] = RowWords.Scale<TFloat, TRow>(w1, s);
            destination[to + 64] = RowWords.Scale<TFloat, TRow>(w2, s);
            destination[to + 96] = RowWords.Scale<TFloat, TRow>(w3, s);
        }
    }

    /// <summary>
    /// Thread i (a word quad of row r, as above): zeros where no token lands in row r (SP pad entries,
    /// alignment rows).
    /// </summary>
    public static void ClearTokenlessRowsTiled(
        Index1D i,
        ArrayView<int> rowToken,
        int words,
        ArrayView<uint> destination
    )
    {
        int perRow = words / 4,
            index = i;
        int r = index / perRow,
            within = index - r * perRow;
        if (rowToken[r] >= 0)
            return;
        long to = (long)r * words + within / 32 * TiledRowKernelBodies.TileWords + within % 32;
        destination[to] = 0u;
        destination[to + 32] = 0u;
        destination[to + 64] = 0u;
        destination[to + 96] = 0u;
    }
}
