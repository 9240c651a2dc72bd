using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// An estimate of one rank's memory for a dispatch → experts → combine round, in 64-bit arithmetic that saturates
/// instead of wrapping, so callers can refuse a problem before anything is allocated. It counts the dominant tensors
/// with uniform routing (each rank receives about as many rows as it sends): the input, output and SP-summed rows, the
/// routed rows in the local, exchanged, expert-major and expert-output forms, the routing entries' index tensors, and
/// the per-expert counts, and with FP8 rows on the wire the wire rows sent and received. It is an estimate, not a
/// bound: skewed routing can concentrate rows on one rank.
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
        long localExperts = config.NumExperts / epSize;
        long routed = Add(entries, MemoryBudget.Multiply(localExperts, config.ExpertAlignment - 1L));
        long rowBytes = MemoryBudget.Multiply(dim, rowType.SizeOf());
        long rows = Add(MemoryBudget.Multiply(inputRows, 3), Add(entries, MemoryBudget.Multiply(routed, 3)));
        long bytes = MemoryBudget.Multiply(rows, rowBytes);
        bytes = Add(bytes, MemoryBudget.Multiply(entries, 16)); // ids, scores, order, positions
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
        long routed = Add(entries, MemoryBudget.Multiply(config.NumExperts / epSize, config.ExpertAlignment - 1L));
        return MemoryBudget.Multiply(Math.Max(routed, totalTokens), dim);
    }

    private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
}
