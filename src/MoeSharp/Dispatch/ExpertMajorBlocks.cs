using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// The routed (expert-major) rows of a dispatch seen per source rank: block (p, j), the rows rank p sends for local
/// expert j, starts at routed row <see cref="DispatchPlan.BlockDestination"/>[p·e + j]. Rank p's chunk is its blocks
/// for j = 0, 1, … in order, which is the order p sends them in (its rows are sorted by expert).
/// </summary>
internal static class ExpertMajorBlocks
{
    /// <summary>The blocks of <paramref name="plan"/>'s routed rows per source rank, in elements of rows of
    /// <paramref name="dim"/>.</summary>
    public static ChunkBlocks Of(DispatchPlan plan, int dim)
    {
        int ranks = plan.OutputSplits.Length,
            e = plan.TokensPerLocalExpert.Length;
        var peerStart = new int[ranks + 1];
        var offset = new long[ranks * e];
        var length = new long[ranks * e];
        for (int p = 0; p < ranks; p++)
        {
            peerStart[p + 1] = (p + 1) * e;
            for (int j = 0; j < e; j++)
            {
                offset[p * e + j] = (long)plan.BlockDestination[p * e + j] * dim;
                length[p * e + j] = (long)plan.ReceiveCounts[p * e + j] * dim;
            }
        }
        return new ChunkBlocks(peerStart, offset, length);
    }

    /// <summary>
    /// Zeros the alignment padding after each expert's received rows in host tensor <paramref name="routed"/> (the
    /// rows no block covers), as the permuting gather does.
    /// </summary>
    public static void ClearPadRows(DispatchPlan plan, Tensor routed)
    {
        if (plan.RoutedRows == plan.RowsReceived)
            return;
        int ranks = plan.OutputSplits.Length,
            e = plan.TokensPerLocalExpert.Length;
        int d = routed.RowLength;
        for (int j = 0; j < e; j++)
        {
            int last = (ranks - 1) * e + j;
            int filled = plan.BlockDestination[last] + plan.ReceiveCounts[last],
                end = plan.BlockDestination[j] + plan.TokensPerLocalExpert[j];
            if (end <= filled)
                continue;
            // Element indices of a tensor fit an int; its bytes may not.
            if (routed.DType == DType.BFloat16)
                routed.AsSpan<BFloat16>().Slice(filled * d, (end - filled) * d).Clear();
            else
                routed.AsSpan<float>().Slice(filled * d, (end - filled) * d).Clear();
        }
    }
}
