using MoeSharp.Cli.Output;
using MoeSharp.Collectives;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe run</c>: the main job. Runs dispatch → row-wise test experts → combine → SP reduce on a world of
/// ranks (in-process threads, or MPI processes with <c>--comm mpi</c>) with random inputs, prints what each
/// rank sent and received, and checks the result bitwise against a single-rank run. Exit code 0 only when
/// verified.
/// </summary>
internal sealed class RunCommand : Command<RunSettings>
{
    public override int Execute(CommandContext context, RunSettings settings, CancellationToken cancellationToken)
    {
        TimeSpan? timeout = settings.TimeoutSeconds is double s ? TimeSpan.FromSeconds(s) : null;
        CommKind comm = CommKinds.Parse(settings.Comm);
        IReadOnlyList<RunCase> cases = settings.IsDefault ? RunCase.Defaults : [RunCase.From(settings)];
        if (settings.Traffic is not null)
            cases = cases.Select(c => c with { Traffic = true }).ToList();
        ComputeOptions compute = ComputeOptions.Parse(settings.Device, settings.Gpus);
        if (CapacityOptions.Parse(settings.CapacityFactor, settings.CapacityRows) is { } capacity)
            cases = cases.Select(c => c with { Capacity = capacity }).ToList();

        var results = new List<(RunCase Case, RunSummary Summary)>();
        if (comm == CommKind.InProcess)
        {
            foreach (RunCase runCase in cases)
            {
                DispatchCase problem = runCase.Build();
                results.Add(
                    (
                        runCase,
                        InProcessWorld.Run(
                            runCase.World,
                            world => RunVerification.RunRank(world, problem, compute),
                            timeout
                        )[0]
                    )
                );
            }
        }
        else
        {
            // MPI initializes once per process, so one launch runs every case, each sized to the job.
            var mpiResults = RankLauncher.Run(
                comm,
                0,
                world =>
                    cases
                        .Select(c => c.ForWorld(world.Size, settings.World))
                        .Select(c => (c, RunVerification.RunRank(world, c.Build(), compute)))
                        .ToList(),
                timeout,
                checkJobSize: size =>
                {
                    foreach (RunCase c in cases)
                        c.ForWorld(size, settings.World).Validate();
                }
            );
            if (mpiResults is null)
                return 0; // not rank 0: rank 0 reports, and every rank aborts on failure
            results.AddRange(mpiResults);
        }

        bool allVerified = true;
        using MetricsSink? metrics = MetricsSink.Open(settings.Metrics);
        for (int i = 0; i < results.Count; i++)
        {
            var (runCase, summary) = results[i];
            allVerified &= Report(runCase, summary);
            metrics?.Write(Record(runCase, summary, settings, compute));
            if (summary.Traffic is { } traffic)
                metrics?.Write(TrafficMetrics.ToRecord("run", i + 1, traffic));
        }
        if (settings.Traffic is { } png && results[^1].Summary.Traffic is { } last)
        {
            TrafficHeatmap.Save(png, last);
            AnsiConsole.MarkupLine(Markup.Escape($"traffic heatmap written to {png}"));
        }
        if (!allVerified)
            return 1;
        AnsiConsole.MarkupLine("[green]verified: bitwise identical to the single-rank reference[/]");
        return 0;
    }

    /// <summary>A case as a <c>moesharp-metrics/1</c> record (docs/metrics.md).</summary>
    internal static MetricsRecord Record(RunCase c, RunSummary summary, RunSettings settings, ComputeOptions compute) =>
        MetricsRecord
            .Create("run", "case")
            .With("verified", summary.Mismatches == 0)
            .With("mismatches", summary.Mismatches)
            .With("ms", summary.Elapsed.TotalMilliseconds)
            .With("rows_sent", summary.Ranks.Select(r => r.RowsSent).ToArray())
            .With("rows_received", summary.Ranks.Select(r => r.RowsReceived).ToArray())
            .With("world", c.World)
            .With("sp", c.Sp)
            .With("tokens", c.Tokens)
            .With("dim", c.Dim)
            .With("experts", c.Experts)
            .With("top_k", c.TopK)
            .With("sharding", c.Sharding == MoeSharp.Dispatch.SpShardingPolicy.Balanced ? "balanced" : "pad")
            .With("layout", c.Layout == MoeSharp.Dispatch.SequenceLayout.Sharded ? "sharded" : "replicated")
            .With("score_before_experts", c.ScoreBefore)
            .With("align", c.Align)
            .With("seed", c.Seed)
            .With("dtype", c.RowType == MoeSharp.Tensors.DType.BFloat16 ? "bf16" : "f32")
            .With("wire", WireOption.Name(c.Wire))
            .With("device", compute.DeviceName)
            .With("comm", settings.Comm ?? "inproc")
            .With("capacity", c.Capacity?.ToString() ?? "off")
            .With("overflow_rounds", summary.OverflowRounds);

    private static bool Report(RunCase runCase, RunSummary summary)
    {
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(runCase.Describe())}, on {Markup.Escape(summary.Device)}[/]");
        AnsiConsole.Write(RankTable(runCase, summary));
        if (runCase.Capacity is { } capacity)
        {
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    $"capacity mode ({capacity}): the overflow round "
                        + (summary.OverflowRounds > 0 ? "ran" : "did not run")
                )
            );
        }
        if (summary.Mismatches > 0)
        {
            string detail = summary.FirstMismatch is null ? "see the ranks' messages above" : summary.FirstMismatch;
            AnsiConsole.MarkupLine(
                $"[red]NOT verified: {summary.Mismatches} rank(s) differ from the single-rank reference; {Markup.Escape(detail)}[/]"
            );
            return false;
        }
        AnsiConsole.MarkupLine(
            $"{runCase.World / runCase.Sp} group(s) match the single-rank reference bitwise "
                + $"({summary.Elapsed.TotalMilliseconds:F1} ms for dispatch, experts, combine and reduce on rank 0)"
        );
        AnsiConsole.WriteLine();
        return true;
    }

    private static Table RankTable(RunCase runCase, RunSummary summary)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (string column in new[] { "rank", "group", "SP rank", "shard", "pad", "sent", "received" })
        {
            table.AddColumn(new TableColumn(column).RightAligned().NoWrap());
        }
        table.AddColumn(new TableColumn("rows per local expert").NoWrap());
        foreach (RankStatistics r in summary.Ranks)
        {
            table.AddRow(
                r.Rank.ToString(),
                (r.Rank / runCase.Sp).ToString(),
                (r.Rank % runCase.Sp).ToString(),
                r.ShardTokens.ToString(),
                r.PadRows.ToString(),
                r.RowsSent.ToString(),
                r.RowsReceived.ToString(),
                Markup.Escape(RowsPerExpert(r.RowsPerLocalExpert))
            );
        }
        return table;
    }

    private static string RowsPerExpert(int[] rows)
    {
        const int Shown = 8;
        string shown = string.Join(",", rows.Take(Shown));
        return rows.Length > Shown ? $"{shown},… ({rows.Length})" : shown;
    }
}
