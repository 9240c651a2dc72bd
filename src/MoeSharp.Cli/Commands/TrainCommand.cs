using System.Collections.Concurrent;
using System.Globalization;
using MoeSharp.Cli.Output;
using MoeSharp.Cli.Training;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe train</c>: trains a small MoE regression model on in-process ranks or as one rank of an MPI job
/// (<c>--comm mpi</c>), printing the loss (round-trip decimal and IEEE-754 bits, so runs on different
/// layouts and transports can be compared exactly), the expert load and the load-balancing bias every few
/// steps; optionally plots the loss curve. A progress bar is drawn only on an interactive terminal.
/// </summary>
internal sealed class TrainCommand : Command<TrainSettings>
{
    public override int Execute(CommandContext context, TrainSettings s, CancellationToken cancellationToken)
    {
        CommKind comm = CommKinds.Parse(s.Comm);
        TimeSpan? timeout = s.TimeoutSeconds is double t ? TimeSpan.FromSeconds(t) : null;
        ComputeOptions compute = ComputeOptions.Parse(s.Device, s.Gpus);
        TrainOptions Options(int world) =>
            new(
                s.Steps,
                world,
                s.Sp,
                s.SequenceLayout,
                s.ShardingPolicy,
                s.Tokens,
                s.Dim,
                s.Hidden,
                s.Experts,
                s.TopK,
                s.SharedHidden,
                s.ScoreBeforeExperts,
                s.LearningRate,
                s.BiasUpdateCoeff,
                s.Seed
            )
            {
                Compute = compute,
                BFloat16Products = s.BFloat16Products,
                Profile = s.Profile,
                ScoreFunc = s.ScoreFunction,
                RouteNorm = s.RouteNorm,
                RouteScale = s.RouteScale,
                ExpertGroups = s.ExpertGroups,
                LimitedGroups = s.LimitedGroups,
                LoadFrom = s.Load,
                SaveTo = s.Save,
                Traffic = s.Traffic is not null,
                Batch = s.BatchKind,
            };
        // Before any work: a checkpoint that does not fit these options is a usage error, not a failed rank
        // (under MPI checked with the job's size, where the ranks agree on it and rank 0 prints it once).
        int resumedAt = 0;
        void CheckLoad(int world)
        {
            if (s.Load is { } load)
                resumedAt = TrainCheckpoint.Check(load, Options(world));
        }
        if (comm == CommKind.InProcess)
            CheckLoad(s.WorldOrDefault);

        double[]? losses;
        int worldSize;
        var stepTimes = new ConcurrentQueue<(double Step, double Layer)>();
        using MetricsSink? metrics = MetricsSink.Open(s.Metrics);
        var log = new StepLog(s, metrics, stepTimes, ProgressLine.ForStderr("train"));
        if (comm == CommKind.Mpi)
        {
            // Rank 0 prints as it goes; mpiexec forwards the lines, where a progress bar would only garble.
            int jobSize = 0;
            losses = RankLauncher.Run(
                comm,
                0,
                world =>
                {
                    jobSize = world.Size;
                    log.World = world.Size;
                    if (world.Rank == 0)
                        PrintHeader(s, world.Size, resumedAt);
                    return MoeTrainer.TrainRank(world, Options(world.Size), log.Step);
                },
                timeout,
                checkJobSize: size =>
                {
                    s.CheckJob(size);
                    CheckLoad(size);
                }
            );
            if (losses is null)
                return 0; // not rank 0: rank 0 reports, and every rank aborts on failure
            worldSize = jobSize;
        }
        else
        {
            worldSize = s.WorldOrDefault;
            PrintHeader(s, worldSize, resumedAt);
            losses = AnsiConsole.Profile.Capabilities.Interactive
                ? TrainWithProgressBar(s, Options(worldSize), log, timeout, cancellationToken)
                : MoeTrainer.Train(Options(worldSize), log.Step, timeout);
        }
        log.Finish();

        if (s.Plot is { } path)
        {
            LossPlot.Save(
                path,
                losses,
                string.Create(CultureInfo.InvariantCulture, $"moe train: world {worldSize}, sp {s.Sp}, seed {s.Seed}"),
                resumedAt + 1
            );
            AnsiConsole.MarkupLine($"loss curve written to {Markup.Escape(path)}");
        }
        if (s.Traffic is { } trafficPath && log.TrafficTotal is { } traffic)
        {
            TrafficHeatmap.Save(trafficPath, traffic);
            AnsiConsole.MarkupLine(Markup.Escape($"traffic heatmap (all steps) written to {trafficPath}"));
        }
        if (s.Save is { } saved)
            AnsiConsole.MarkupLine(Markup.Escape($"checkpoint of step {s.Steps} written to {saved}"));
        if (stepTimes.Count > 1)
        {
            // The first step compiles kernels and warms pools: the median of the others is the steady state.
            double Median(IEnumerable<double> values)
            {
                double[] sorted = values.Order().ToArray();
                return sorted[sorted.Length / 2];
            }
            var warm = stepTimes.Skip(1).ToArray();
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"step time on rank 0, median over steps {resumedAt + 2}-{resumedAt + stepTimes.Count}: {Median(warm.Select(t => t.Step)):F1} ms, of which the layer (forward, backward, its AdamW) {Median(warm.Select(t => t.Layer)):F1} ms"
                    )
                )
            );
        }
        bool fell = losses[^1] < losses[0];
        AnsiConsole.MarkupLine(
            Markup.Escape(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"final loss {Format(losses[^1])}: {(fell ? "fell" : "did not fall")} from {losses[0]:R}"
                )
            )
        );
        return 0;
    }

    /// <summary>Round-trip decimal and the IEEE-754 bits, so equal losses are visibly equal.</summary>
    internal static string Format(double loss) =>
        string.Create(CultureInfo.InvariantCulture, $"{loss:R} (0x{BitConverter.DoubleToInt64Bits(loss):X16})");

    private static void PrintHeader(TrainSettings s, int world, int resumedAt)
    {
        string groups = s.ExpertGroups > 0 ? $", {s.LimitedGroups} of {s.ExpertGroups} expert groups" : "";
        string router = string.Create(
            CultureInfo.InvariantCulture,
            $"{s.ScoreFunc} scores{(s.RouteNorm ? ", normalized" : "")}{(s.RouteScale != 1 ? $", scale {s.RouteScale}" : "")}{groups}"
        );
        string batch = TrainOptions.NameOf(
            s.BatchKind ?? TrainOptions.DefaultBatch(ComputeOptions.Parse(s.Device, s.Gpus).Device)
        );
        string resumed = resumedAt > 0 ? $"; resuming after step {resumedAt} from {s.Load}" : "";
        AnsiConsole.MarkupLine(
            Markup.Escape(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"train: world {world}, sp {s.Sp}, {s.Layout} layout, {s.Sharding} sharding; T {s.Tokens}, D {s.Dim}, H {s.Hidden}, E {s.Experts}, K {s.TopK}, Hs {s.SharedHidden}; seed {s.Seed}; on {s.Device ?? "host"}{(s.BFloat16Products ? ", bfloat16 product inputs" : "")}; {batch} batches"
                )
            )
        );
        AnsiConsole.MarkupLine(Markup.Escape($"       router: {router}{resumed}"));
    }

    /// <summary>The kernel profile as milliseconds per step (rank 0's, over steps 2 to the last).</summary>
    internal static void PrintProfile(IReadOnlyList<KernelTime> profile, int steps)
    {
        double total = profile.Sum(t => t.Seconds);
        AnsiConsole.MarkupLine(
            Markup.Escape(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"kernel profile on rank 0, per step over steps 2-{steps + 1} (synchronized around each call): {total * 1e3 / steps:F2} ms in kernels"
                )
            )
        );
        foreach (KernelTime t in profile)
        {
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"  {t.Kernel, -34} {t.Seconds * 1e3 / steps, 9:F3} ms  {100 * t.Seconds / Math.Max(total, 1e-12), 5:F1} %  {t.Calls / (double)steps, 7:F1} calls"
                    )
                )
            );
        }
    }

    private static double[] TrainWithProgressBar(
        TrainSettings s,
        TrainOptions options,
        StepLog log,
        TimeSpan? timeout,
        CancellationToken cancellationToken
    )
    {
        var reports = new ConcurrentQueue<StepReport>();
        double[] losses = [];
        AnsiConsole
            .Progress()
            .AutoClear(false)
            .Columns(
                new TaskDescriptionColumn(),
                new ProgressBarColumn(),
                new PercentageColumn(),
                new ElapsedTimeColumn()
            )
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask("training", maxValue: s.Steps);
                // The ranks run on their own threads; the console is written from this one only.
                Task<double[]> run = Task.Run(
                    () => MoeTrainer.Train(options, reports.Enqueue, timeout),
                    cancellationToken
                );
                while (!run.IsCompleted)
                {
                    Drain(task);
                    Thread.Sleep(20);
                }
                Drain(task);
                losses = run.GetAwaiter().GetResult();
            });
        return losses;

        void Drain(ProgressTask task)
        {
            while (reports.TryDequeue(out StepReport? r))
            {
                task.Value = r.Step;
                log.Print(r);
            }
        }
    }
}
