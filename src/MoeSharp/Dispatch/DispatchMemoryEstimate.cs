using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// An estimate of one rank's memory for a dispatch → experts → combine round, in 64-bit arithmetic that saturates
/// instead of wrapping, so callers can refuse a problem before anything is allocated. It counts the dominant tensors
/// with uniform routing (each rank receives about as many rows as it sends): the input, output and SP-summed rows, the
/// routed rows in the local, exchanged, expert-major and expert-output forms, the routing entries' index tensors, and
/// the per-expert counts, and with FP8 rows on the wire the wire rows sent and received. In capacity mode
/// (<see cref="TokenDispatcherConfig.Capacity"/>, EP &gt; 1) the local and received rows are the <c>S·C</c> rows of the
/// slots whatever the routing. It is an estimate, not a bound: skewed routing can concentrate rows on one rank.
/// </summary>
public static class DispatchMemoryEstimate
{
    /// <summary>Bytes one rank holds (host memory for host kernels, device memory for device kernels).</summary>
    /// <param name="config">E, K, layout, alignment.</param>
    /// <param name="spSize">Ranks of an SP group.</param>
    /// <param name="totalTokens">T: tokens of the rank's SP group.</param>
    /// <param name="dim">D.</param>
    /// <param name="rowType">The row dtype.</param>
    /// <param name="epSize">The EP size (E/S local experts, each padded up to the alignment).</param>
    public static long BytesPerRank(
        TokenDispatcherConfig config,
        int epSize,
        int spSize,
        long totalTokens,
        int dim,
        DType rowType
    )
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfLessThan(epSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(spSize, 1);
        long shard = (totalTokens + spSize - 1) / spSize;
        long inputRows = config.Layout == SequenceLayout.Replicated ? totalTokens : shard;
        long entries = MemoryBudget.Multiply(shard, config.TopK);
        long localRows = RoutedRows(config, epSize, entries);
        long localExperts = config.NumExperts / epSize;
        long routed = Add(localRows, MemoryBudget.Multiply(localExperts, config.ExpertAlignment - 1L));
        long rowBytes = MemoryBudget.Multiply(dim, rowType.SizeOf());
        long rows = Add(MemoryBudget.Multiply(inputRows, 3), Add(localRows, MemoryBudget.Multiply(routed, 3)));
        long bytes = MemoryBudget.Multiply(rows, rowBytes);
        bytes = Add(bytes, MemoryBudget.Multiply(entries, 16)); // ids, scores, order, positions
        if (localRows > entries)
            bytes = Add(bytes, MemoryBudget.Multiply(Add(localRows, routed), 8)); // the slots' row maps
        bytes = Add(bytes, MemoryBudget.Multiply(config.NumExperts, 16)); // counts, splits, the count messages
        if (config.WireFormat == RowWireFormat.Fp8E4M3 && dim > 0)
        {
            // The FP8 wire rows sent and received (about as many as the entries each way).
            long wireRow = Quantization.Fp8WireRows.BytesPerRow(dim);
            bytes = Add(bytes, MemoryBudget.Multiply(MemoryBudget.Multiply(entries, 2), wireRow));
        }
        return bytes;
    }

    /// <summary>
    /// The largest single tensor's element count for the same problem (the routed rows, or the input rows if larger),
    /// to check against <see cref="MemoryBudget.MaxTensorElements"/>.
    /// </summary>
    /// <inheritdoc cref="BytesPerRank"/>
    public static long LargestTensorElements(
        TokenDispatcherConfig config,
        int epSize,
        int spSize,
        long totalTokens,
        int dim
    )
    {
        ArgumentNullException.ThrowIfNull(config);
        long shard = (totalTokens + spSize - 1) / spSize;
        long entries = MemoryBudget.Multiply(shard, config.TopK);
        long routed = Add(
            RoutedRows(config, epSize, entries),
            MemoryBudget.Multiply(config.NumExperts / epSize, config.ExpertAlignment - 1L)
        );
        return MemoryBudget.Multiply(Math.Max(routed, totalTokens), dim);
    }

    /// <summary>
    /// The rows a rank routes before alignment: its <paramref name="entries"/>, or in capacity mode with EP &gt; 1 the
    /// <c>S·C</c> rows of the slots it sends and receives, if more (<see cref="DispatchCapacity.RowsPerPeer"/>'s C,
    /// saturating instead of throwing: the dispatcher refuses a C over 2^31 itself).
    /// </summary>
    private static long RoutedRows(TokenDispatcherConfig config, int epSize, long entries)
    {
        if (config.Capacity is not { } capacity || epSize <= 1)
            return entries;
        double rows = capacity.CapacityFactor is double f
            ? Math.Ceiling(f * entries)
            : capacity.FixedRowsPerRank!.Value;
        double slots = Math.Ceiling(rows / epSize) * epSize;
        return slots >= long.MaxValue ? long.MaxValue : Math.Max(entries, (long)slots);
    }

    private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
}
