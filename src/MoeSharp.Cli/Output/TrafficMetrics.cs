using MoeSharp.Telemetry;

namespace MoeSharp.Cli.Output;

/// <summary>
/// A <see cref="TrafficReport"/> as one <c>event: traffic</c> line of the <c>moesharp-metrics/1</c> schema
/// (docs/metrics.md): totals and balancedness as numbers, the matrices as arrays of rows (source rank first).
/// </summary>
internal static class TrafficMetrics
{
    /// <summary>The event name of traffic lines.</summary>
    public const string EventName = "traffic";

    /// <summary>The line for <paramref name="report"/>, step <paramref name="step"/> (1-based) of a command.</summary>
    public static MetricsRecord ToRecord(string command, int step, TrafficReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        int world = report.WorldSize,
            experts = report.NumExperts;
        var bySourceAndExpert = new long[world][];
        var waits = new double[world][];
        var exchangeWaits = new double[world][];
        int exchanges = TrafficReport.ExchangeCount;
        for (int s = 0; s < world; s++)
        {
            bySourceAndExpert[s] = report.RowCounts.Slice(s * experts, experts).ToArray();
            waits[s] = report.WaitMilliseconds.Slice(s * world, world).ToArray();
            exchangeWaits[s] = report.ExchangeWaitMilliseconds.Slice(s * exchanges, exchanges).ToArray();
        }
        return MetricsRecord
            .Create(command, EventName)
            .With("step", step)
            .With("rows_total", report.TotalRows)
            .With("bytes_total", report.TotalBytes)
            .With("rank_balancedness", report.RankBalancedness)
            .With("expert_balancedness", report.ExpertBalancedness)
            .With("rows_per_rank", report.RowsPerRank())
            .With("rows_per_expert", report.RowsPerExpert())
            .With("rows_between_ranks", Jagged(report.RowsBetweenRanks()))
            .With("bytes_between_ranks", Jagged(report.BytesBetweenRanks()))
            .With("rows_by_source_expert", bySourceAndExpert)
            .With("wait_ms", waits)
            .With("exchange_wait_ms", exchangeWaits)
            .With("world", world)
            .With("experts", experts);
    }

    private static long[][] Jagged(long[,] matrix)
    {
        var rows = new long[matrix.GetLength(0)][];
        for (int r = 0; r < rows.Length; r++)
        {
            rows[r] = new long[matrix.GetLength(1)];
            for (int c = 0; c < rows[r].Length; c++)
                rows[r][c] = matrix[r, c];
        }
        return rows;
    }
}
