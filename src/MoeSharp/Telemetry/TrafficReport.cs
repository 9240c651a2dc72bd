namespace MoeSharp.Telemetry;

/// <summary>
/// The traffic of one dispatch step over an expert-parallel group: rows and bytes sent from each source rank to each
/// expert (so to its destination rank: expert <c>e</c> lives on rank <c>e / (E / world)</c>), and the time each rank
/// waited for each peer in the exchanges. One rank fills its own source row and wait row; <see cref="Reduce"/> adds
/// the ranks' partial reports in rank order, so every rank that reduces the same partials gets the same bits.
/// </summary>
/// <remarks>
/// The source × destination × expert matrix is stored as source × expert: each expert has exactly one destination,
/// so the other entries are zero by construction and <see cref="RowsBetweenRanks"/> folds experts into ranks.
/// Balancedness is vLLM's EPLB measure, mean load / max load (1 = perfectly even; 1 also when nothing moved).
/// </remarks>
public sealed class TrafficReport
{
    private readonly long[] _rows; // [source, expert]
    private readonly long[] _bytes; // [source, expert]
    private readonly double[] _waits; // [rank, peer], milliseconds
    private readonly double[] _exchangeWaits; // [rank, TrafficExchange], milliseconds

    /// <summary>An empty report: <paramref name="worldSize"/> ranks, <paramref name="numExperts"/> experts.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive, the experts do not divide evenly over
    /// the ranks, or the matrices would not fit an array.</exception>
    public TrafficReport(int worldSize, int numExperts)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(worldSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numExperts);
        if (numExperts % worldSize != 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(numExperts),
                numExperts,
                $"experts must divide evenly over the {worldSize} ranks"
            );
        }
        if ((long)worldSize * numExperts > Array.MaxLength || (long)worldSize * worldSize > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(
                nameof(worldSize),
                worldSize,
                $"{worldSize} ranks × {numExperts} experts exceed one array"
            );
        }
        WorldSize = worldSize;
        NumExperts = numExperts;
        _rows = new long[worldSize * numExperts];
        _bytes = new long[worldSize * numExperts];
        _waits = new double[worldSize * worldSize];
        _exchangeWaits = new double[worldSize * ExchangeCount];
    }

    /// <summary>
    /// A report holding copies of flat matrices (as <see cref="RowCounts"/>, <see cref="ByteCounts"/> and
    /// <see cref="WaitMilliseconds"/> give them): how a report is rebuilt after its arrays crossed ranks.
    /// </summary>
    /// <exception cref="ArgumentException">A span's length does not match the sizes.</exception>
    public TrafficReport(
        int worldSize,
        int numExperts,
        ReadOnlySpan<long> rows,
        ReadOnlySpan<long> bytes,
        ReadOnlySpan<double> waits
    )
        : this(worldSize, numExperts)
    {
        CheckLength(rows.Length, _rows.Length, nameof(rows));
        CheckLength(bytes.Length, _bytes.Length, nameof(bytes));
        CheckLength(waits.Length, _waits.Length, nameof(waits));
        rows.CopyTo(_rows);
        bytes.CopyTo(_bytes);
        waits.CopyTo(_waits);
    }

    /// <summary>
    /// <see cref="TrafficReport(int, int, ReadOnlySpan{long}, ReadOnlySpan{long}, ReadOnlySpan{double})"/> with the
    /// per-exchange waits too (as <see cref="ExchangeWaitMilliseconds"/> gives them).
    /// </summary>
    /// <exception cref="ArgumentException">A span's length does not match the sizes.</exception>
    public TrafficReport(
        int worldSize,
        int numExperts,
        ReadOnlySpan<long> rows,
        ReadOnlySpan<long> bytes,
        ReadOnlySpan<double> waits,
        ReadOnlySpan<double> exchangeWaits
    )
        : this(worldSize, numExperts, rows, bytes, waits)
    {
        CheckLength(exchangeWaits.Length, _exchangeWaits.Length, nameof(exchangeWaits));
        exchangeWaits.CopyTo(_exchangeWaits);
    }

    /// <summary>The exchanges <see cref="ExchangeWaitMilliseconds"/> times, one column each.</summary>
    public const int ExchangeCount = 3;

    /// <summary>Ranks in the expert-parallel group.</summary>
    public int WorldSize { get; }

    /// <summary>Experts over all ranks.</summary>
    public int NumExperts { get; }

    /// <summary>Experts each rank holds.</summary>
    public int ExpertsPerRank => NumExperts / WorldSize;

    /// <summary>Rows sent, <c>[source rank, expert]</c> row-major.</summary>
    public ReadOnlySpan<long> RowCounts => _rows;

    /// <summary>Bytes sent (rows, scales and any padding the exchange moves), <c>[source rank, expert]</c>.</summary>
    public ReadOnlySpan<long> ByteCounts => _bytes;

    /// <summary>
    /// Milliseconds each rank waited for each peer, <c>[rank, peer]</c> row-major: summed over the step's exchanges,
    /// how long after the rank each peer entered the exchange, at most the rank's whole time in it.
    /// </summary>
    public ReadOnlySpan<double> WaitMilliseconds => _waits;

    /// <summary>
    /// Milliseconds each rank spent in each exchange of the step, <c>[rank, <see cref="TrafficExchange"/>]</c>
    /// row-major (<see cref="ExchangeCount"/> columns): the whole collective as this rank saw it, start to finish.
    /// </summary>
    /// <remarks>
    /// An all-to-all-v is one call that returns when every peer's rows are in, so it cannot itself tell which peer a
    /// rank waited for. The dispatcher derives <see cref="WaitMilliseconds"/> from when each rank entered each
    /// exchange, where the ranks share one clock (in-process ranks, processes on one host); across hosts the per-peer
    /// matrix stays zero and this one is what there is.
    /// </remarks>
    public ReadOnlySpan<double> ExchangeWaitMilliseconds => _exchangeWaits;

    /// <summary>The rank that holds <paramref name="expert"/>.</summary>
    public int DestinationOf(int expert)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(expert);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(expert, NumExperts);
        return expert / ExpertsPerRank;
    }

    /// <summary>Adds <paramref name="rows"/> rows (<paramref name="bytes"/> bytes) sent to an expert.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is out of range or a count negative.</exception>
    public void AddSent(int source, int expert, long rows, long bytes)
    {
        CheckRank(source, nameof(source));
        _ = DestinationOf(expert);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        _rows[source * NumExperts + expert] += rows;
        _bytes[source * NumExperts + expert] += bytes;
    }

    /// <summary>Adds time <paramref name="rank"/> spent waiting for <paramref name="peer"/>'s data.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A rank out of range, or a negative or infinite time.</exception>
    public void AddWait(int rank, int peer, double milliseconds)
    {
        CheckRank(rank, nameof(rank));
        CheckRank(peer, nameof(peer));
        if (!(milliseconds >= 0) || double.IsInfinity(milliseconds))
        {
            throw new ArgumentOutOfRangeException(
                nameof(milliseconds),
                milliseconds,
                "must be finite and not negative"
            );
        }
        _waits[rank * WorldSize + peer] += milliseconds;
    }

    /// <summary>Adds time <paramref name="rank"/> spent in <paramref name="exchange"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A rank or exchange out of range, or a negative or infinite
    /// time.</exception>
    public void AddExchangeWait(int rank, TrafficExchange exchange, double milliseconds)
    {
        CheckRank(rank, nameof(rank));
        if ((uint)exchange >= ExchangeCount)
        {
            throw new ArgumentOutOfRangeException(nameof(exchange), exchange, "not an exchange of the step");
        }
        if (!(milliseconds >= 0) || double.IsInfinity(milliseconds))
        {
            throw new ArgumentOutOfRangeException(
                nameof(milliseconds),
                milliseconds,
                "must be finite and not negative"
            );
        }
        _exchangeWaits[rank * ExchangeCount + (int)exchange] += milliseconds;
    }

    /// <summary>Rows sent from <paramref name="source"/> to <paramref name="expert"/>.</summary>
    public long Rows(int source, int expert)
    {
        CheckRank(source, nameof(source));
        _ = DestinationOf(expert);
        return _rows[source * NumExperts + expert];
    }

    /// <summary>Rows between ranks, <c>[source, destination]</c>: the experts of each destination added up.</summary>
    public long[,] RowsBetweenRanks() => FoldExperts(_rows);

    /// <summary>Bytes between ranks, <c>[source, destination]</c>.</summary>
    public long[,] BytesBetweenRanks() => FoldExperts(_bytes);

    /// <summary>Rows each expert received, over all sources.</summary>
    public long[] RowsPerExpert()
    {
        var load = new long[NumExperts];
        for (int s = 0; s < WorldSize; s++)
        {
            for (int e = 0; e < NumExperts; e++)
                load[e] += _rows[s * NumExperts + e];
        }
        return load;
    }

    /// <summary>Rows each rank received, over all sources and its experts.</summary>
    public long[] RowsPerRank()
    {
        long[] perExpert = RowsPerExpert();
        var load = new long[WorldSize];
        for (int e = 0; e < NumExperts; e++)
            load[e / ExpertsPerRank] += perExpert[e];
        return load;
    }

    /// <summary>All rows sent.</summary>
    public long TotalRows => Sum(_rows);

    /// <summary>All bytes sent.</summary>
    public long TotalBytes => Sum(_bytes);

    /// <summary>Mean over max of <see cref="RowsPerRank"/> (1 when nothing moved).</summary>
    public double RankBalancedness => Balancedness(RowsPerRank());

    /// <summary>Mean over max of <see cref="RowsPerExpert"/> (1 when nothing moved).</summary>
    public double ExpertBalancedness => Balancedness(RowsPerExpert());

    /// <summary>
    /// The sum of per-rank partial reports, added element by element from zero in the order given (rank order), so
    /// the floating-point wait times come out the same on every rank that reduces the same partials.
    /// </summary>
    /// <exception cref="ArgumentException">No partials, or partials of different sizes.</exception>
    public static TrafficReport Reduce(IReadOnlyList<TrafficReport> partialsInRankOrder)
    {
        ArgumentNullException.ThrowIfNull(partialsInRankOrder);
        if (partialsInRankOrder.Count == 0)
        {
            throw new ArgumentException("at least one partial report is needed", nameof(partialsInRankOrder));
        }
        TrafficReport first = partialsInRankOrder[0];
        var total = new TrafficReport(first.WorldSize, first.NumExperts);
        for (int p = 0; p < partialsInRankOrder.Count; p++)
        {
            TrafficReport part = partialsInRankOrder[p];
            if (part.WorldSize != total.WorldSize || part.NumExperts != total.NumExperts)
            {
                throw new ArgumentException(
                    $"partial {p} is {part.WorldSize} ranks × {part.NumExperts} experts, partial 0 is "
                        + $"{total.WorldSize} × {total.NumExperts}",
                    nameof(partialsInRankOrder)
                );
            }
            for (int i = 0; i < total._rows.Length; i++)
            {
                total._rows[i] += part._rows[i];
                total._bytes[i] += part._bytes[i];
            }
            for (int i = 0; i < total._waits.Length; i++)
                total._waits[i] += part._waits[i];
            for (int i = 0; i < total._exchangeWaits.Length; i++)
                total._exchangeWaits[i] += part._exchangeWaits[i];
        }
        return total;
    }

    private long[,] FoldExperts(long[] perExpert)
    {
        var matrix = new long[WorldSize, WorldSize];
        for (int s = 0; s < WorldSize; s++)
        {
            for (int e = 0; e < NumExperts; e++)
                matrix[s, e / ExpertsPerRank] += perExpert[s * NumExperts + e];
        }
        return matrix;
    }

    private static double Balancedness(long[] load)
    {
        long max = load.Max();
        return max == 0 ? 1.0 : (double)Sum(load) / load.Length / max;
    }

    private static long Sum(long[] values)
    {
        long sum = 0;
        foreach (long v in values)
            sum += v;
        return sum;
    }

    private void CheckRank(int rank, string name)
    {
        if ((uint)rank >= (uint)WorldSize)
        {
            throw new ArgumentOutOfRangeException(name, rank, $"must be a rank in [0, {WorldSize})");
        }
    }

    private static void CheckLength(int actual, int expected, string name)
    {
        if (actual != expected)
            throw new ArgumentException($"{name} holds {actual} values, expected {expected}", name);
    }
}
