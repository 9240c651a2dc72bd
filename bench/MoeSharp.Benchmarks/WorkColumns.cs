using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace MoeSharp.Benchmarks;

/// <summary>
/// A benchmark class that knows how much work one operation of each of its benchmarks does (bytes moved,
/// or floating-point operations), so <see cref="WorkColumn"/> can show it and a rate per second.
/// </summary>
public interface IWorkPerOperation
{
    /// <summary>Work of one operation of <paramref name="benchmarkCase"/> (its method and parameter values).</summary>
    double WorkPerOperation(BenchmarkCase benchmarkCase);
}

/// <summary>
/// Two summary columns from <see cref="IWorkPerOperation"/>: the work of one operation, and that work over
/// the mean time (per-operation, so <c>OperationsPerInvoke</c> is accounted for).
/// </summary>
public sealed class WorkColumn : IColumn
{
    private readonly bool _rate;
    private readonly string _unit;
    private readonly double _scale;

    private WorkColumn(string name, bool rate, string unit, double scale, string legend)
    {
        ColumnName = name;
        _rate = rate;
        _unit = unit;
        _scale = scale;
        Legend = legend;
    }

    /// <summary>MiB moved per operation.</summary>
    public static readonly WorkColumn MiBPerOp = new(
        "MiB/op",
        rate: false,
        "MiB",
        1.0 / (1 << 20),
        "Bytes moved per operation (distinct bytes read + bytes written), in MiB"
    );

    /// <summary>Bytes moved over the mean time, in 10^9 bytes per second.</summary>
    public static readonly WorkColumn GBPerSecond = new(
        "GB/s",
        rate: true,
        "GB/s",
        1.0,
        "MiB/op over the mean time, in 10^9 bytes per second"
    );

    /// <summary>Floating-point operations per operation, in 10^9.</summary>
    public static readonly WorkColumn GflopPerOp = new(
        "GFLOP/op",
        rate: false,
        "GFLOP",
        1e-9,
        "Floating-point operations per operation (2·M·N·K), in 10^9"
    );

    /// <summary>Floating-point operations over the mean time, in 10^9 per second.</summary>
    public static readonly WorkColumn GflopPerSecond = new(
        "GFLOP/s",
        rate: true,
        "GFLOP/s",
        1.0,
        "GFLOP/op over the mean time, in 10^9 floating-point operations per second"
    );

    /// <inheritdoc />
    public string Id => nameof(WorkColumn) + "." + ColumnName;

    /// <inheritdoc />
    public string ColumnName { get; }

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => _rate ? 1 : 0;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend { get; }

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, summary.Style);

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        if (Activator.CreateInstance(benchmarkCase.Descriptor.Type) is not IWorkPerOperation source)
            return "-";
        double work = source.WorkPerOperation(benchmarkCase);
        if (!_rate)
            return (work * _scale).ToString("N1", CultureInfo.InvariantCulture);
        // Mean is in nanoseconds per operation, so work / ns = 10^9 work per second.
        double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (meanNs is not > 0)
            return "-";
        return (work / meanNs.Value).ToString("N2", CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    /// <inheritdoc />
    public override string ToString() => ColumnName + " (" + _unit + ")";
}

/// <summary>Adds the MiB/op and GB/s columns.</summary>
public sealed class BandwidthConfig : ManualConfig
{
    /// <summary>Creates the config.</summary>
    public BandwidthConfig() => AddColumn(WorkColumn.MiBPerOp, WorkColumn.GBPerSecond);
}

/// <summary>Adds the GFLOP/op and GFLOP/s columns.</summary>
public sealed class FlopsConfig : ManualConfig
{
    /// <summary>Creates the config.</summary>
    public FlopsConfig() => AddColumn(WorkColumn.GflopPerOp, WorkColumn.GflopPerSecond);
}

/// <summary>Reads benchmark parameters by name.</summary>
internal static class BenchmarkCaseExtensions
{
    public static T Param<T>(this BenchmarkCase benchmarkCase, string name) => (T)benchmarkCase.Parameters[name];

    public static string Method(this BenchmarkCase benchmarkCase) => benchmarkCase.Descriptor.WorkloadMethod.Name;
}
