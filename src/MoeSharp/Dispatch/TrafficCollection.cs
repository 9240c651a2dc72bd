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
    /// 2·E + S + 2·X + 1 64-bit words per rank, X = <see cref="TrafficReport.ExchangeCount"/>) and put together in rank
    /// order. Each entry has exactly one contributing rank, so the report equals <see cref="TrafficReport.Reduce"/> of
    /// the partials, bit for bit, on every rank.
    /// </summary>
    /// <remarks>
    /// The per-peer waits come from when each rank entered each exchange (<paramref name="arrivals"/>): rank r waited
    /// for peer p in an exchange for as long as p arrived after r, at most r's whole time in it. A rank cannot finish
    /// an all-to-all before its last peer arrives, so the largest of its row is the part of the exchange it spent
    /// waiting rather than moving rows. They are filled only when every rank reads the same clock
    /// (<see cref="HostClock.Domain"/>: in-process ranks, or processes on one host); across hosts they stay zero.
    /// </remarks>
    /// <param name="world">The EP group; null for one rank.</param>
    /// <param name="partial">This rank's partial: only row <paramref name="rank"/> is read.</param>
    /// <param name="rank">This rank.</param>
    /// <param name="arrivals">When this rank entered each exchange, one <see cref="System.Diagnostics.Stopwatch"/>
    /// timestamp per <see cref="TrafficExchange"/>; 0 for an exchange this partial does not time.</param>
    public static TrafficReport Gather(
        IProcessGroup? world,
        TrafficReport partial,
        int rank,
        ReadOnlySpan<long> arrivals
    )
    {
        int s = partial.WorldSize,
            e = partial.NumExperts,
            x = TrafficReport.ExchangeCount;
        if (arrivals.Length != x)
            throw new ArgumentException($"arrivals has {arrivals.Length} entries, not one per exchange ({x})");
        int width = 2 * e + s + 2 * x + 1;
        var mine = new long[width];
        partial.RowCounts.Slice(rank * e, e).CopyTo(mine);
        partial.ByteCounts.Slice(rank * e, e).CopyTo(mine.AsSpan(e));
        ReadOnlySpan<double> waits = partial.WaitMilliseconds.Slice(rank * s, s);
        ReadOnlySpan<double> exchangeWaits = partial.ExchangeWaitMilliseconds.Slice(rank * x, x);
        for (int p = 0; p < s; p++)
            mine[2 * e + p] = BitConverter.DoubleToInt64Bits(waits[p]);
        for (int i = 0; i < x; i++)
            mine[2 * e + s + i] = BitConverter.DoubleToInt64Bits(exchangeWaits[i]);
        arrivals.CopyTo(mine.AsSpan(2 * e + s + x));
        mine[width - 1] = HostClock.Domain;

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
        if (ranks > 1)
            AddPeerWaits(all, width, ranks, 2 * e + s + x, stepWaits, peerWaits);
        return new TrafficReport(s, e, rows, bytes, peerWaits, stepWaits);
    }

    /// <summary>
    /// Adds to <c>peerWaits[r, p]</c>, for each timed exchange, how long after rank r peer p entered it, clamped to
    /// [0, r's time in the exchange]; nothing when the ranks' clocks differ.
    /// </summary>
    private static void AddPeerWaits(
        long[] all,
        int width,
        int ranks,
        int arrivalOffset,
        double[] stepWaits,
        double[] peerWaits
    )
    {
        int x = TrafficReport.ExchangeCount;
        for (int r = 1; r < ranks; r++)
        {
            if (all[r * width + width - 1] != all[width - 1])
                return;
        }
        for (int i = 0; i < x; i++)
        {
            for (int r = 0; r < ranks; r++)
            {
                long mine = all[r * width + arrivalOffset + i];
                if (mine == 0)
                    continue;
                for (int p = 0; p < ranks; p++)
                {
                    long theirs = all[p * width + arrivalOffset + i];
                    if (p == r || theirs == 0)
                        continue;
                    double late = HostClock.Milliseconds(mine, theirs);
                    peerWaits[r * ranks + p] += Math.Clamp(late, 0, stepWaits[r * x + i]);
                }
            }
        }
    }
}
