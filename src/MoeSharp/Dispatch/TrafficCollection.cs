using MoeSharp.Collectives;
using MoeSharp.Telemetry;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// How a dispatcher fills a <see cref="TrafficReport"/> when <see cref="TokenDispatcherConfig.CollectTraffic"/> is on:
/// this rank's row from the plan's counts (no device work), its exchange times, and one all-gather of every rank's row
/// so each rank holds the same report.
/// </summary>
internal static class TrafficCollection
{
    /// <summary>
    /// This rank's partial report: the rows it sends each expert (the plan's counts, SP pad rows on expert 0, as the
    /// exchange moves them; rows for its own experts stay on the rank and are counted on the diagonal too) and their
    /// bytes (rows × D × the row dtype's size).
    /// </summary>
    public static TrafficReport Partial(
        DispatchPlan plan,
        int epSize,
        int epRank,
        int numExperts,
        int dim,
        DType rowType
    ) => Partial(plan, epSize, epRank, numExperts, (long)dim * rowType.SizeOf());

    /// <summary>
    /// <see cref="Partial(DispatchPlan, int, int, int, int, DType)"/> with the bytes of one row on the wire given
    /// (an FP8 row's codes and scales, <see cref="Quantization.Fp8WireRows.BytesPerRow"/>).
    /// </summary>
    public static TrafficReport Partial(DispatchPlan plan, int epSize, int epRank, int numExperts, long rowBytes)
    {
        var partial = new TrafficReport(epSize, numExperts);
        for (int e = 0; e < numExperts; e++)
        {
            int rows = plan.ExpertCounts[e];
            if (rows != 0)
                partial.AddSent(epRank, e, rows, rows * rowBytes);
        }
        return partial;
    }

    /// <summary>Milliseconds since <paramref name="startTimestamp"/> (a <see cref="System.Diagnostics.Stopwatch"/>
    /// timestamp).</summary>
    public static double MillisecondsSince(long startTimestamp) =>
        System.Diagnostics.Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds;

    /// <summary>
    /// Every rank's row of its partial report, gathered over <paramref name="world"/> (one all-gather of
    /// 2·E + S + 3 64-bit words per rank) and put together in rank order. Each entry has exactly one contributing
    /// rank, so the report equals <see cref="TrafficReport.Reduce"/> of the partials, bit for bit, on every rank.
    /// </summary>
    /// <param name="world">The EP group; null for one rank.</param>
    /// <param name="partial">This rank's partial: only row <paramref name="rank"/> is read.</param>
    /// <param name="rank">This rank.</param>
    public static TrafficReport Gather(IProcessGroup? world, TrafficReport partial, int rank)
    {
        int s = partial.WorldSize,
            e = partial.NumExperts,
            x = TrafficReport.ExchangeCount;
        int width = 2 * e + s + x;
        var mine = new long[width];
        partial.RowCounts.Slice(rank * e, e).CopyTo(mine);
        partial.ByteCounts.Slice(rank * e, e).CopyTo(mine.AsSpan(e));
        ReadOnlySpan<double> waits = partial.WaitMilliseconds.Slice(rank * s, s);
        ReadOnlySpan<double> exchangeWaits = partial.ExchangeWaitMilliseconds.Slice(rank * x, x);
        for (int p = 0; p < s; p++)
            mine[2 * e + p] = BitConverter.DoubleToInt64Bits(waits[p]);
        for (int i = 0; i < x; i++)
            mine[2 * e + s + i] = BitConverter.DoubleToInt64Bits(exchangeWaits[i]);

        long[] all = mine;
        if (world is not null && world.Size > 1)
        {
            all = new long[
                (long)width * world.Size <= Array.MaxLength
                    ? width * world.Size
                    : throw new InvalidOperationException(
                        $"a traffic report of {s} ranks × {e} experts exceeds one array (rank {rank})"
                    )
            ];
            world.AllGather<long>(mine, all);
        }

        var rows = new long[s * e];
        var bytes = new long[s * e];
        var peerWaits = new double[s * s];
        var stepWaits = new double[s * x];
        int ranks = all.Length / width;
        for (int r = 0; r < ranks; r++)
        {
            int source = ranks == 1 ? rank : r;
            ReadOnlySpan<long> row = all.AsSpan(r * width, width);
            row.Slice(0, e).CopyTo(rows.AsSpan(source * e, e));
            row.Slice(e, e).CopyTo(bytes.AsSpan(source * e, e));
            for (int p = 0; p < s; p++)
                peerWaits[source * s + p] = BitConverter.Int64BitsToDouble(row[2 * e + p]);
            for (int i = 0; i < x; i++)
                stepWaits[source * x + i] = BitConverter.Int64BitsToDouble(row[2 * e + s + i]);
        }
        return new TrafficReport(s, e, rows, bytes, peerWaits, stepWaits);
    }
}
