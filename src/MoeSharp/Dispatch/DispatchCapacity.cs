using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// Capacity mode (<see cref="TokenDispatcherConfig.Capacity"/>): the row exchange runs on buffers sized by a bound
/// instead of by the routing counts, so the counts never travel to the host. Each rank sends every peer a fixed slot of
/// <c>C</c> rows (the first exchange round, equal splits); rows beyond a slot are detected on the device and sent in a
/// second exchange round sized from the counts, which runs only when some rank overflowed. No row is ever dropped, and
/// the output is bitwise the normal mode's.
/// </summary>
/// <remarks>
/// With S ranks in the EP group and N = ⌈T/SP⌉·K routing entries per rank (the largest shard's, so the ranks of an
/// SP group agree under any sharding), each rank can receive <c>S·C</c> rows in the first round: <see cref="Factor"/>
/// sets <c>C = ⌈f·N/S⌉</c> (so f = 1 fits perfectly balanced routing, and f = S fits every routing),
/// <see cref="RowsPerRank"/> sets <c>C = ⌈R/S⌉</c>. Every rank of the group must arrive at the same <c>C</c> (the same
/// bound and, under a factor, the same T in every SP group); ranks that do not all throw the same error. With EP = 1
/// no row leaves the rank and the routed rows are <c>N</c> (plus alignment padding) whatever the bound.
/// </remarks>
public sealed record DispatchCapacity
{
    private DispatchCapacity(double? factor, int? rowsPerRank)
    {
        CapacityFactor = factor;
        FixedRowsPerRank = rowsPerRank;
    }

    /// <summary>The capacity factor f, or null when the bound is <see cref="FixedRowsPerRank"/>.</summary>
    public double? CapacityFactor { get; }

    /// <summary>The fixed rows-per-rank bound R, or null when the bound is <see cref="CapacityFactor"/>.</summary>
    public int? FixedRowsPerRank { get; }

    /// <summary>
    /// When true (the default), every dispatch reads one small status block to the host (never the counts) after the
    /// entries are scanned, so an invalid routing entry throws as in the normal mode. With EP &gt; 1 the status is
    /// read anyway (the group must agree whether the overflow round runs). With EP = 1 and false, a dispatch makes no
    /// host read at all (a step can be captured in a CUDA graph): an invalid entry is then routed to expert 0 with
    /// score 0 instead of throwing.
    /// </summary>
    public bool ValidateOnHost { get; init; } = true;

    /// <summary>Capacity <c>C = ⌈f·N/S⌉</c> rows per peer: f times the rows a rank receives when routing is
    /// balanced.</summary>
    /// <param name="factor">f, finite and positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">f is not finite and positive.</exception>
    public static DispatchCapacity Factor(double factor)
    {
        if (!double.IsFinite(factor) || factor <= 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(factor),
                factor,
                "the capacity factor must be finite and positive"
            );
        }
        return new DispatchCapacity(factor, null);
    }

    /// <summary>Capacity of <paramref name="rows"/> rows per rank in the first round: <c>C = ⌈R/S⌉</c> per
    /// peer.</summary>
    /// <param name="rows">R, at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">R is less than 1.</exception>
    public static DispatchCapacity RowsPerRank(int rows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        return new DispatchCapacity(null, rows);
    }

    /// <summary>C: the rows one rank sends one peer in the first round.</summary>
    /// <param name="entries">N: the largest shard's routing entries, ⌈T/SP⌉·K.</param>
    /// <param name="epSize">S.</param>
    /// <exception cref="SizeLimitException">C exceeds what a tensor indexes.</exception>
    internal int RowsPerPeer(int entries, int epSize)
    {
        double rows = CapacityFactor is double f ? Math.Ceiling(f * entries) : FixedRowsPerRank!.Value;
        double perPeer = Math.Ceiling(rows / epSize);
        if (perPeer * epSize > int.MaxValue)
        {
            throw new SizeLimitException(
                $"a capacity of {perPeer} rows per peer over {epSize} ranks exceeds 2^31 rows ({this})"
            );
        }
        return (int)perPeer;
    }

    /// <inheritdoc />
    public override string ToString() =>
        CapacityFactor is double f
            ? $"capacity factor {f.ToString(System.Globalization.CultureInfo.InvariantCulture)}"
            : $"{FixedRowsPerRank} rows per rank";
}
