using System.Collections.Concurrent;
using System.Globalization;
using MoeSharp.Cli.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe train</c>: trains a small MoE regression model on in-process ranks with a progress bar, printing
/// the loss (round-trip decimal and IEEE-754 bits, so runs on different layouts can be compared exactly),
/// the expert load and the load-balancing bias every few steps; optionally plots the loss curve.
/// </summary>
internal sealed class TrainCommand : Command<TrainSettings>
{
    public override int Execute(CommandContext context, TrainSettings s, CancellationToken cancellationToken)
    {
        var options = new TrainOptions(s.Steps, s.World, s.Sp, s.SequenceLayout, s.ShardingPolicy, s.Tokens, s.Dim, s.Hidden, s.Experts,
            s.TopK, s.SharedHidden, s.ScoreBeforeExperts, s.LearningRate, s.BiasUpdateCoeff, s.Seed);
        TimeSpan? timeout = s.TimeoutSeconds is double t ? TimeSpan.FromSeconds(t) : null;
        AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"train: world {s.World}, sp {s.Sp}, {s.Layout} layout, {s.Sharding} sharding; T {s.Tokens}, D {s.Dim}, H {s.Hidden}, E {s.Experts}, K {s.TopK}, Hs {s.SharedHidden}; seed {s.Seed}")));

        var reports = new ConcurrentQueue<StepReport>();
        double[] losses = [];
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask("training", maxValue: s.Steps);
                // The ranks run on their own threads; the console is written from this one only.
                Task<double[]> run = Task.Run(() => MoeTrainer.Train(options, reports.Enqueue, timeout), cancellationToken);
                while (!run.IsCompleted)
                {
                    Drain(task);
                    Thread.Sleep(20);
                }
                Drain(task);
                losses = run.GetAwaiter().GetResult();
            });

        if (s.Plot is { } path)
        {
            LossPlot.Save(path, losses, string.Create(CultureInfo.InvariantCulture, $"moe train: world {s.World}, sp {s.Sp}, seed {s.Seed}"));
            AnsiConsole.MarkupLine($"loss curve written to {Markup.Escape(path)}");
        }
        bool fell = losses[^1] < losses[0];
        AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"final loss {Format(losses[^1])}: {(fell ? "fell" : "did not fall")} from {losses[0]:R}")));
        return 0;

        void Drain(ProgressTask task)
        {
            while (reports.TryDequeue(out StepReport? r))
            {
                task.Value = r.Step;
                if (r.Step % s.LogEvery == 0 || r.Step == 1 || r.Step == s.Steps)
                {
                    string load = string.Join(" ", r.TokensPerExpert);
                    string bias = string.Join(" ", r.ExpertBias.Select(b => b.ToString("+0.000;-0.000", CultureInfo.InvariantCulture)));
                    AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"step {r.Step,5}  loss {Format(r.Loss)}")));
                    AnsiConsole.MarkupLine(Markup.Escape($"       load [{load}]  bias [{bias}]"));
                }
            }
        }
    }

    /// <summary>Round-trip decimal and the IEEE-754 bits, so equal losses are visibly equal.</summary>
    internal static string Format(double loss) =>
        string.Create(CultureInfo.InvariantCulture, $"{loss:R} (0x{BitConverter.DoubleToInt64Bits(loss):X16})");
}
