using System.Globalization;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Cli.Output;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Spectre.Console;
using Row = MoeSharp.Cli.Benchmarks.UnevenTokensBenchmark.Row;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe bench --uneven</c>: runs <see cref="UnevenTokensBenchmark"/> on every rank (host kernels by default, or
/// <c>--device</c>) and prints one table row per (SP, r, policy, layout); <c>--metrics</c> / <c>--json</c> get one
/// <c>moesharp-metrics/1</c> record per row (kind <c>uneven</c>).
/// Exits 1 when a variant's output is not bitwise the reference's.
/// </summary>
internal static class UnevenBenchReport
{
    public static int Run(BenchSettings s, ComputeOptions compute, CommKind comm, bool scoreBefore)
    {
        // On CUDA the world defaults to one rank per GPU; an explicit --world larger than that puts several ranks on a
        // GPU (they exchange through host memory), which is how one GPU can run the SP sweep at all.
        int? deviceWorld =
            compute.Device == DeviceKind.Cuda && s.WorldOption is null
                ? (compute.Gpus == 0 ? ComputeOptions.CudaDeviceCount() : compute.Gpus)
                : null;
        // Under MPI the job's size is the world, known once the job runs (checkJobSize checks it first).
        UnevenBenchOptions? planned = comm == CommKind.InProcess ? UnevenBenchOptions.Resolve(s, deviceWorld) : null;
        var outcome = RankLauncher.Run(
            comm,
            planned?.World ?? 1,
            group =>
            {
                UnevenBenchOptions options = planned ?? UnevenBenchOptions.Resolve(s, group.Size);
                using DeviceRank? device = compute.CreateRank(group);
                List<Row> rows = UnevenTokensBenchmark.RunRank(
                    group,
                    device,
                    options,
                    scoreBefore,
                    s.Warmup,
                    s.Repeats,
                    s.Seed
                );
                return new Tuple<List<Row>, UnevenBenchOptions, string>(rows, options, compute.Describe(device));
            },
            null,
            checkJobSize: size =>
            {
                if (s.WorldOption is int w && w != size)
                {
                    throw new ArgumentException($"--world {w} but the MPI job has {size} ranks (mpiexec -n)");
                }
                _ = UnevenBenchOptions.Resolve(s, size);
            }
        );
        if (outcome is null)
            return 0; // not rank 0 of an MPI job
        var (results, options, where) = outcome;
        WriteMetrics(results, options, s, comm, compute.DeviceName, scoreBefore);
        if (!s.Json)
            WriteTable(results, options, s, where, scoreBefore);
        return ExitCode(results);
    }

    // One record per row in the moesharp-metrics/1 schema (kind "uneven"), to --metrics and, with --json, stdout.
    private static void WriteMetrics(
        List<Row> results,
        UnevenBenchOptions o,
        BenchSettings s,
        CommKind comm,
        string device,
        bool scoreBefore
    )
    {
        using MetricsSink? metrics = MetricsSink.Open(s.Metrics, toStdout: s.Json);
        if (metrics is null)
            return;
        long rowBytes = RowBytes(o);
        foreach (Row r in results)
        {
            metrics.Write(
                MetricsRecord
                    .Create("bench", "measurement")
                    .With("kind", "uneven")
                    .With("impl", $"moesharp-{device}")
                    .With("ms", r.TotalSeconds * 1e3)
                    .With("iters", s.Repeats)
                    .With("bytes", ExchangedBytes(r, rowBytes))
                    .With("sp", r.Sp)
                    .With("r", r.Remainder)
                    .With("sharding", r.Variant.Sharding.ToString())
                    .With("layout", r.Variant.Layout.ToString())
                    .With("reference", r.Variant.IsReference)
                    .With("real_rows", r.RealRows)
                    .With("pad_rows", r.PadRows)
                    .With("rows_to_other_ranks", r.RowsToOtherRanks)
                    .With("exchanged_bytes", ExchangedBytes(r, rowBytes))
                    .With("reduce_bytes", ReduceBytes(r, o, rowBytes))
                    .With("dispatch_combine_ms", r.DispatchCombineSeconds * 1e3)
                    .With("reduce_ms", r.ReduceSeconds * 1e3)
                    .With("total_vs_reference", r.TotalSeconds / ReferenceOf(results, r).TotalSeconds)
                    .With("bitwise_equal_to_reference", r.MatchesReference)
                    .With("world", o.World)
                    .With("comm", comm == CommKind.Mpi ? "mpi" : "inproc")
                    .With("device", device)
                    .With("tokens", r.Tokens)
                    .With("dim", o.Dim)
                    .With("experts", o.Experts)
                    .With("top_k", o.TopK)
                    .With("dtype", o.RowType == DType.BFloat16 ? "bf16" : "f32")
                    .With("score_before_experts", scoreBefore)
                    .With("warmup", s.Warmup)
                    .With("seed", s.Seed)
                    .With("cores", Environment.ProcessorCount)
            );
        }
    }

    private static void WriteTable(
        List<Row> results,
        UnevenBenchOptions o,
        BenchSettings s,
        string where,
        bool scoreBefore
    )
    {
        AnsiConsole.MarkupLine(
            Markup.Escape(
                $"uneven token counts: {where}, world {o.World} (= EP; SP groups of consecutive ranks, each holding T "
                    + $"tokens), D = {o.Dim}, E = {o.Experts}, K = {o.TopK}, {o.RowType}, "
                    + $"score {(scoreBefore ? "before" : "after")}, "
                    + $"{Environment.ProcessorCount} cores; median of {s.Repeats} after {s.Warmup} warm-up, slowest rank, "
                    + "variants interleaved"
            )
        );
        var table = new Table().Border(TableBorder.Rounded);
        string[] columns =
        [
            "SP",
            "r",
            "T",
            "sharding",
            "layout",
            "real rows",
            "pad rows",
            "pad/real",
            "a2a MB",
            "reduce MB",
            "d+c ms",
            "reduce ms",
            "total ms",
            "vs ref",
            "bitwise",
        ];
        foreach (string c in columns)
        {
            table.AddColumn(c is "sharding" or "layout" ? new TableColumn(c) : new TableColumn(c).RightAligned());
        }
        long rowBytes = RowBytes(o);
        static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
        static string I(long v) => v.ToString(CultureInfo.InvariantCulture);
        foreach (Row r in results)
        {
            bool reference = r.Variant.IsReference;
            double ratio = r.TotalSeconds / ReferenceOf(results, r).TotalSeconds;
            table.AddRow(
                I(r.Sp),
                I(r.Remainder),
                I(r.Tokens),
                r.Variant.Sharding.ToString(),
                r.Variant.Layout.ToString(),
                I(r.RealRows),
                I(r.PadRows),
                F(r.RealRows == 0 ? 0 : (double)r.PadRows / r.RealRows, "P2"),
                F(ExchangedBytes(r, rowBytes) / 1e6, "F2"),
                F(ReduceBytes(r, o, rowBytes) / 1e6, "F2"),
                F(r.DispatchCombineSeconds * 1e3, "F2"),
                F(r.ReduceSeconds * 1e3, "F2"),
                F(r.TotalSeconds * 1e3, "F2"),
                reference ? "ref" : F(ratio, "F2") + "×",
                reference ? "ref"
                    : r.MatchesReference ? "yes"
                    : "NO"
            );
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(
            Markup.Escape(
                "ref: PadToMultiple/Replicated (the seed); real/pad rows: routed rows (tokens · K), whole world; a2a MB: "
                    + "rows sent to other ranks, dispatch + combine; reduce MB: the [T, D] partials of the replicated layout's "
                    + "SP reduce; d+c: dispatch + combine; bitwise: final output equal to ref's"
            )
        );
    }

    /// <summary>1, with a line on stderr, when a variant's output is not bitwise the reference's; else 0.</summary>
    private static int ExitCode(List<Row> results)
    {
        if (results.All(r => r.MatchesReference))
            return 0;
        Row bad = results.First(r => !r.MatchesReference);
        Console.Error.WriteLine(
            $"moe: {bad.Variant.Sharding}/{bad.Variant.Layout} at SP {bad.Sp}, T = {bad.Tokens} "
                + "differs from the PadToMultiple/Replicated reference"
        );
        return 1;
    }

    private static long RowBytes(UnevenBenchOptions o) => (long)o.Dim * o.RowType.SizeOf();

    /// <summary>
    /// Bytes of the two all-to-all-v of rows (dispatch, then the same rows back) between distinct ranks.
    /// </summary>
    private static long ExchangedBytes(Row r, long rowBytes) => 2 * r.RowsToOtherRanks * rowBytes;

    /// <summary>
    /// The replicated layout's SP reduce: each rank adds its <c>[T, D]</c> partial; none when sharded.
    /// </summary>
    private static long ReduceBytes(Row r, UnevenBenchOptions o, long rowBytes) =>
        r.Variant.Layout == SequenceLayout.Replicated ? (long)o.World * r.Tokens * rowBytes : 0;

    private static Row ReferenceOf(List<Row> rows, Row r) =>
        rows.First(x => x.Sp == r.Sp && x.Tokens == r.Tokens && x.Variant.IsReference);
}
