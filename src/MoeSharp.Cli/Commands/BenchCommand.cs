using System.Text.Json;
using MoeSharp.Cli.Benchmarks;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe bench</c>: median dispatch and combine times on the host with the effective bandwidth (bytes that
/// must move over the time), next to the machine's memory-copy bandwidth measured the same way.
/// </summary>
internal sealed class BenchCommand : Command<BenchSettings>
{
    public override int Execute(CommandContext context, BenchSettings s, CancellationToken cancellationToken)
    {
        bool scoreBefore = RunSettings.ParseScoreBefore(s.Score);
        DispatchBenchmark.Result r = DispatchBenchmark.Run(s.World, s.Tokens, s.Dim, s.Experts, s.TopK, scoreBefore, s.Warmup, s.Repeats, s.Seed);
        double copy = CopyBandwidth.Measure(r.DispatchBytes / 2, s.Warmup, s.Repeats);
        double dispatchGbs = r.DispatchBytes / r.DispatchSeconds / 1e9;
        double combineGbs = r.CombineBytes / r.CombineSeconds / 1e9;
        double totalGbs = (r.DispatchBytes + r.CombineBytes) / (r.DispatchSeconds + r.CombineSeconds) / 1e9;
        double copyGbs = copy / 1e9;
        if (s.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                world = s.World, tokens = s.Tokens, dim = s.Dim, experts = s.Experts, topK = s.TopK, scoreBefore,
                cores = Environment.ProcessorCount,
                dispatchMs = r.DispatchSeconds * 1e3, combineMs = r.CombineSeconds * 1e3,
                dispatchGBs = dispatchGbs, combineGBs = combineGbs, dispatchCombineGBs = totalGbs,
                copyGBs = copyGbs, fractionOfCopy = totalGbs / copyGbs,
            }));
            return 0;
        }
        AnsiConsole.MarkupLine($"world {s.World}, T = {s.Tokens} per rank, D = {s.Dim}, E = {s.Experts}, K = {s.TopK}, float32, " +
            $"score {(scoreBefore ? "before" : "after")}, {Environment.ProcessorCount} cores, median of {s.Repeats} after {s.Warmup} warm-up");
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("step");
        table.AddColumn(new TableColumn("time (ms)").RightAligned());
        table.AddColumn(new TableColumn("bytes moved (MB)").RightAligned());
        table.AddColumn(new TableColumn("GB/s").RightAligned());
        table.AddColumn(new TableColumn("of copy").RightAligned());
        void Row(string step, double seconds, long bytes, double gbs) =>
            table.AddRow(step, $"{seconds * 1e3:F2}", $"{bytes / 1e6:F0}", $"{gbs:F2}", $"{gbs / copyGbs:P0}");
        Row("dispatch", r.DispatchSeconds, r.DispatchBytes, dispatchGbs);
        Row("combine", r.CombineSeconds, r.CombineBytes, combineGbs);
        Row("dispatch + combine", r.DispatchSeconds + r.CombineSeconds, r.DispatchBytes + r.CombineBytes, totalGbs);
        table.AddRow("memory copy", "", "", $"{copyGbs:F2}", "100%");
        AnsiConsole.Write(table);
        return 0;
    }
}
