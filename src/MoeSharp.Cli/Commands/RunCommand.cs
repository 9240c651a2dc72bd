using System.Diagnostics;
using MoeSharp.Cli.Verification;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe run</c>: the main job. Runs dispatch → row-wise test experts → combine → SP reduce on a world of
/// in-process ranks with random inputs, prints what each rank sent and received, and checks the result
/// bitwise against a single-rank run. Exit code 0 only when verified.
/// </summary>
internal sealed class RunCommand : Command<RunSettings>
{
    public override int Execute(CommandContext context, RunSettings settings, CancellationToken cancellationToken)
    {
        TimeSpan? timeout = settings.TimeoutSeconds is double s ? TimeSpan.FromSeconds(s) : null;
        IReadOnlyList<RunCase> cases = settings.IsDefault ? RunCase.Defaults : [RunCase.From(settings)];
        bool allVerified = true;
        foreach (RunCase runCase in cases)
        {
            allVerified &= RunOne(runCase, timeout);
        }
        if (!allVerified) return 1;
        AnsiConsole.MarkupLine("[green]verified: bitwise identical to the single-rank reference[/]");
        return 0;
    }

    private static bool RunOne(RunCase runCase, TimeSpan? timeout)
    {
        DispatchCase problem = runCase.Build();
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(runCase.Describe())}[/]");
        var clock = Stopwatch.StartNew();
        RankOutcome[] outcomes = DispatchWorldRunner.RunInProcess(problem, timeout);
        clock.Stop();
        AnsiConsole.Write(RankTable(problem, outcomes));

        Tensor[] finals = DispatchWorldRunner.GroupFinals(problem, outcomes);
        for (int g = 0; g < problem.GroupCount; g++)
        {
            Tensor reference = DispatchWorldRunner.RunReference(problem.Config, problem.Groups[g]);
            string? mismatch = TensorComparison.FirstBitwiseMismatch($"final.g{g}", reference, finals[g]);
            if (mismatch is not null)
            {
                AnsiConsole.MarkupLine($"[red]NOT verified: {Markup.Escape(mismatch)}[/]");
                return false;
            }
        }
        AnsiConsole.MarkupLine($"{problem.GroupCount} group(s) match the single-rank reference bitwise ({clock.Elapsed.TotalMilliseconds:F1} ms on {problem.World} ranks)");
        AnsiConsole.WriteLine();
        return true;
    }

    private static Table RankTable(DispatchCase problem, RankOutcome[] outcomes)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (string column in new[] { "rank", "group", "SP rank", "shard tokens", "pad rows", "rows sent", "rows received", "rows per local expert" })
        {
            table.AddColumn(new TableColumn(column).RightAligned());
        }
        foreach (RankOutcome o in outcomes)
        {
            table.AddRow(
                o.Rank.ToString(), (o.Rank / problem.Sp).ToString(), (o.Rank % problem.Sp).ToString(),
                o.Shard.RealRows.ToString(), o.Shard.PadRows.ToString(),
                o.Metadata.RowsSent.ToString(), o.Metadata.RowsReceived.ToString(),
                Markup.Escape(RowsPerExpert(o.Metadata.TokensPerLocalExpert.AsSpan())));
        }
        return table;
    }

    private static string RowsPerExpert(ReadOnlySpan<int> rows)
    {
        const int Shown = 8;
        var parts = new List<string>();
        for (int i = 0; i < Math.Min(rows.Length, Shown); i++) parts.Add(rows[i].ToString());
        if (rows.Length > Shown) parts.Add($"… ({rows.Length} experts)");
        return string.Join(" ", parts);
    }
}
