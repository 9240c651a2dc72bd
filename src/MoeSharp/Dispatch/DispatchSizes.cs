using System.Globalization;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// The dispatch's sizes, each computed once in 64-bit checked arithmetic and checked against what a tensor can
/// index (and, for large ones, the host memory available) before anything of that size is allocated.
/// </summary>
internal static class DispatchSizes
{
    /// <summary>Below this estimate the available memory is not consulted (reading it costs a file read).</summary>
    private const long MemoryCheckThresholdBytes = 1L << 30;

    /// <summary>Rows · K routing entries of a shard.</summary>
    public static int Entries(int rows, int topK, int rank)
    {
        long entries = (long)rows * topK;
        MemoryBudget.EnsureTensorFits(entries, $"the routing entries of {rows} tokens × top-k {topK} (rank {rank})");
        return (int)entries;
    }

    /// <summary><paramref name="rows"/> rounded up to a multiple of <paramref name="alignment"/>, in 64 bits.</summary>
    public static long AlignUp(long rows, int alignment) => (rows + alignment - 1) / alignment * alignment;

    /// <summary>
    /// Each local expert's received rows, padded to the alignment, as ints: throws before any of them (or their
    /// sum, the routed rows) exceeds what a tensor can index, or the routed tensors exceed the host memory.
    /// </summary>
    /// <param name="receiveCounts">Rows from each source for each local expert, <c>[S, E/S]</c> flattened.</param>
    /// <param name="localExperts">E/S.</param>
    /// <param name="alignment">ExpertAlignment.</param>
    /// <param name="dim">D.</param>
    /// <param name="rowType">The row dtype.</param>
    /// <param name="onHost">Whether the rows live in host memory (the memory estimate applies).</param>
    /// <param name="rank">This rank, for the message.</param>
    public static int[] AlignedExpertRows(
        int[] receiveCounts,
        int localExperts,
        int alignment,
        int dim,
        DType rowType,
        bool onHost,
        int rank
    )
    {
        var aligned = new long[localExperts];
        for (int b = 0; b < receiveCounts.Length; b++)
            aligned[b % localExperts] += receiveCounts[b];
        long total = 0;
        for (int j = 0; j < localExperts; j++)
        {
            aligned[j] = AlignUp(aligned[j], alignment);
            total += aligned[j];
        }
        string what = string.Create(
            CultureInfo.InvariantCulture,
            $"the routed rows ({localExperts} local experts, each padded to a multiple of the expert alignment "
                + $"{alignment}) on rank {rank}"
        );
        MemoryBudget.EnsureTensorFits(total, what);
        MemoryBudget.EnsureTensorFits(MemoryBudget.Multiply(total, dim), $"[{total}, {dim}]: {what}");
        // The routed rows, the rows in flight and the experts' outputs: three tensors of this size at once.
        long bytes = MemoryBudget.Multiply(MemoryBudget.Multiply(total, dim), 3L * rowType.SizeOf());
        if (onHost && bytes > MemoryCheckThresholdBytes)
        {
            MemoryBudget.EnsureHostFits(
                bytes,
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"for {total} routed rows of dimension {dim} on rank {rank}"
                )
            );
        }
        return Array.ConvertAll(aligned, r => (int)r);
    }
}
