using System.Globalization;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Cli.Output;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Verification;
using Spectre.Console;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe bench --capacity-factor F</c> (or <c>--capacity-rows R</c>): dispatch → combine in capacity mode beside the
/// normal mode in one loop (<see cref="CapacityBenchmark"/>), on <c>--world</c> in-process ranks, host or
/// <c>--device</c>; prints the medians, their ratio and how often the overflow round ran.
/// </summary>
internal static class CapacityBenchReport
{
    /// <summary>Runs the comparison and reports it; exit code 0, or 1 when the modes' outputs differ.</summary>
    public static int Run(BenchSettings s, DispatchCapacity capacity, ComputeOptions compute, bool scoreBefore)
    {
        BenchShape shape = BenchShape.Resolve(s);
        if (shape.Experts % s.World != 0)
            throw new ArgumentException($"--experts {shape.Experts} must be a multiple of --world {s.World}");
        var problem = new BenchProblem(
            shape.Tokens,
            shape.Dim,
            shape.Experts,
            shape.TopK,
            scoreBefore,
            shape.RowType,
            s.Seed
        );
        CapacityBenchmark.Result r = InProcessWorld.Run(
            s.World,
            world => CapacityBenchmark.RunRank(world, compute, capacity, problem, s.Warmup, s.Repeats, s.Graph)
        )[0];

        double ratio = r.NormalSeconds / r.CapacitySeconds;
        using (MetricsSink? metrics = MetricsSink.Open(s.Metrics, toStdout: s.Json))
        {
            var rows = new List<(string Impl, double Seconds)>
            {
                ("normal", r.NormalSeconds),
                ("capacity", r.CapacitySeconds),
            };
            if (r.GraphSeconds is double replay)
                rows.Add(("capacity-graph", replay));
            foreach (var (impl, seconds) in rows)
            {
                metrics?.Write(
                    MetricsRecord
                        .Create("bench", "measurement")
                        .With("kind", "dispatch_combine")
                        .With("impl", impl)
                        .With("ms", seconds * 1e3)
                        .With("iters", s.Repeats)
                        .With("world", s.World)
                        .With("device", compute.DeviceName)
                        .With("tokens", shape.Tokens)
                        .With("dim", shape.Dim)
                        .With("experts", shape.Experts)
                        .With("top_k", shape.TopK)
                        .With("dtype", shape.RowTypeName)
                        .With("capacity", capacity.ToString())
                        .With("overflow_rounds", impl == "capacity" ? r.OverflowRounds : 0)
                        .With("normal_over_this", r.NormalSeconds / seconds)
                        .With("bitwise", r.Bitwise)
                );
            }
        }
        if (s.Json)
            return r.Bitwise ? 0 : 1;
        string F(double seconds) => (seconds * 1e3).ToString("F3", CultureInfo.InvariantCulture);
        AnsiConsole.MarkupLine(
            Markup.Escape(
                $"dispatch → combine, {s.World} rank(s) on {r.Device}, T = {shape.Tokens} per rank, D = {shape.Dim}, "
                    + $"E = {shape.Experts}, K = {shape.TopK}, {shape.RowTypeName}; medians of {s.Repeats} "
                    + $"(slowest rank per step)"
            )
        );
        var table = new Table().AddColumns("mode", "median ms", "overflow rounds", "normal / this");
        table.AddRow("normal (counts read to the host)", F(r.NormalSeconds), "-", "1.00");
        table.AddRow(
            Markup.Escape($"capacity ({capacity})"),
            F(r.CapacitySeconds),
            $"{r.OverflowRounds} of {r.Steps}",
            ratio.ToString("F2", CultureInfo.InvariantCulture)
        );
        if (r.GraphSeconds is double graph)
        {
            table.AddRow(
                "capacity, CUDA graph replay",
                F(graph),
                "0 (capture needs none)",
                (r.NormalSeconds / graph).ToString("F2", CultureInfo.InvariantCulture)
            );
        }
        AnsiConsole.Write(table);
        if (!r.Bitwise)
        {
            AnsiConsole.MarkupLine("[red]a capacity-mode combine output differs from the normal mode's[/]");
            return 1;
        }
        AnsiConsole.MarkupLine(
            r.GraphSeconds is null
                ? "capacity mode's combine output is bitwise the normal mode's"
                : "capacity mode's combine output, eager and replayed from the CUDA graph, is bitwise the normal mode's"
        );
        return 0;
    }
}
