namespace MoeSharp.Compute;

/// <summary>
/// How a product of <c>HostGemm</c>'s private grid (one of at most two default blocks per thread, such as an expert's
/// few hundred rows on many threads, or each of several experts too large for one wave of the shared pass) is cut
/// into C blocks, one task each: the grid of row and column blocks that a simple cost model says finishes first.
/// </summary>
/// <remarks>
/// <para>
/// Each task of such a product packs its own B columns (or, with AVX-512, a row-major B of whole 32-column panels with
/// steps at most 2 KiB apart, reads them where they lie) and reads its A rows where they lie, or packs them too
/// without AVX-512 or when A's steps lie far apart (<c>HostGemm.RunPrivateGrid</c> says why), so a task's time grows
/// with its block's area (the multiply-adds) and with its block's height plus width (the operand rows and columns it
/// reads and packs). Narrow blocks balance well but pack much for little work: 44 blocks of 24 × 128 for a 256 × 512
/// product on 16 threads move 152 operand lines for 3,072 outputs each, 16 blocks of 132 × 64 move 196 for 8,448. The
/// model weighs one operand line against <see cref="ReadWeight"/> outputs, and blocks run in rounds of as many as
/// there are threads.
/// </para>
/// <para>
/// Row blocks are whole micro-panels of <see cref="GemmMicroKernel.MR"/> rows, column blocks whole panels of
/// <see cref="GemmMicroKernel.NR"/> columns, and neither grows past the caller's maxima (the default block, or 264 rows
/// for the private grid), so a task's A block and B micro-panels stay in its core's caches as they do for large
/// products. The grid only decides who computes which elements: every element is still its own ascending chain.
/// </para>
/// </remarks>
internal static class GemmTaskGrid
{
    /// <summary>
    /// Outputs of one reduction step that cost as much as one operand line does for that step (read and packed): one
    /// core's FMA rate, about 55 G multiply-adds a second at 512 bits, over the rate at which it reads operand floats
    /// from the shared cache and packs them, about 2.5 G a second (10 GB/s).
    /// </summary>
    internal const int ReadWeight = 22;

    /// <summary>
    /// The row-block height and column-block width for an <paramref name="m"/> × <paramref name="n"/> product on
    /// <paramref name="threads"/> threads, at most <paramref name="maxRows"/> × <paramref name="maxColumns"/>.
    /// </summary>
    public static (int Rows, int Columns) Choose(int m, int n, int threads, int maxRows, int maxColumns)
    {
        int mr = GemmMicroKernel.MR,
            nr = GemmMicroKernel.NR;
        int rowPanels = Blocks(m, mr),
            columnPanels = Blocks(n, nr);
        int maxRowPanels = Math.Max(1, maxRows / mr),
            maxColumnPanels = Math.Max(1, maxColumns / nr);
        long bestCost = long.MaxValue;
        (int Rows, int Columns) best = (mr, nr);
        // Every block height and width in whole panels (at most 12 × 8 pairs with the 512-bit kernel's defaults).
        for (int height = 1; height <= Math.Min(maxRowPanels, rowPanels); height++)
        {
            for (int width = 1; width <= Math.Min(maxColumnPanels, columnPanels); width++)
            {
                // HostGemm evens out the row blocks: 22 panels in blocks of at most 12 are two of 11.
                int rowBlocks = Blocks(rowPanels, height);
                long tasks = (long)rowBlocks * Blocks(columnPanels, width);
                long rows = Math.Min(m, Blocks(rowPanels, rowBlocks) * mr),
                    columns = Math.Min(n, width * nr);
                long cost = Blocks(tasks, threads) * ((rows * columns) + (ReadWeight * (rows + columns)));
                if (cost < bestCost)
                {
                    bestCost = cost;
                    best = (height * mr, width * nr);
                }
            }
        }
        return best;
    }

    private static long Blocks(long extent, long block) => (extent + block - 1) / block;

    private static int Blocks(int extent, int block) => (extent + block - 1) / block;
}
