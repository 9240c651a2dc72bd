using System.Collections.Concurrent;
using System.Globalization;
using MoeSharp.Cli.Output;
using MoeSharp.Cli.Training;
using MoeSharp.Verification;
using Spectre.Console;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// Where <c>moe train</c>'s steps go: the console (every <c>--log-every</c> steps, the first and the last), the
/// <c>--metrics</c> file (every step), the step times for the closing median and the progress line on stderr.
/// Called on rank 0 only.
/// </summary>
internal sealed class StepLog(
    TrainSettings s,
    MetricsSink? metrics,
    ConcurrentQueue<(double Step, double Layer)> stepTimes,
    ProgressLine progress
)
{
    /// <summary>The world size the records name (the job's size under MPI); set before training.</summary>
    public int World { get; set; } = s.WorldOrDefault;

    /// <summary>The traffic of every step logged so far, added in step order; null when not collected.</summary>
    public MoeSharp.Telemetry.TrafficReport? TrafficTotal { get; private set; }

    /// <summary>Logs a step and reports progress (plain runs, where no progress bar is drawn).</summary>
    public void Step(StepReport r)
    {
        Print(r);
        progress.Report(r.Step, s.Steps, "steps");
    }

    /// <summary>Logs a step: its metrics record always, its console lines when due.</summary>
    public void Print(StepReport r)
    {
        stepTimes.Enqueue((r.Milliseconds, r.LayerMilliseconds));
        metrics?.Write(Record(r));
        if (r.Traffic is { } traffic)
        {
            metrics?.Write(TrafficMetrics.ToRecord("train", r.Step, traffic));
            TrafficTotal = TrafficTotal is null
                ? traffic
                : MoeSharp.Telemetry.TrafficReport.Reduce([TrafficTotal, traffic]);
        }
        if (r.Step % s.LogEvery != 0 && r.Step != 1 && r.Step != s.Steps)
            return;
        string load = string.Join(" ", r.TokensPerExpert);
        // Rounded first: a tiny negative bias would otherwise print as "-+0.000".
        string bias = string.Join(
            " ",
            r.ExpertBias.Select(b =>
                MathF.Round(b, 3, MidpointRounding.AwayFromZero) is var v && v != 0
                    ? v.ToString("+0.000;-0.000", CultureInfo.InvariantCulture)
                    : "+0.000"
            )
        );
        AnsiConsole.MarkupLine(
            Markup.Escape(
                string.Create(CultureInfo.InvariantCulture, $"step {r.Step, 5}  loss {TrainCommand.Format(r.Loss)}")
            )
        );
        AnsiConsole.MarkupLine(Markup.Escape($"       load [{load}]  bias [{bias}]"));
        if (r.Profile is { } profile)
            TrainCommand.PrintProfile(profile, stepTimes.Count - 1);
    }

    /// <summary>Ends the progress line.</summary>
    public void Finish() => progress.Finish();

    /// <summary>A step as a <c>moesharp-metrics/1</c> record (docs/metrics.md).</summary>
    public MetricsRecord Record(StepReport r) =>
        MetricsRecord
            .Create("train", "step")
            .With("step", r.Step)
            .With("loss", r.Loss)
            .With(
                "loss_bits",
                string.Create(CultureInfo.InvariantCulture, $"0x{BitConverter.DoubleToInt64Bits(r.Loss):X16}")
            )
            .With("ms", r.Milliseconds)
            .With("layer_ms", r.LayerMilliseconds)
            .With("tokens_per_expert", r.TokensPerExpert)
            .With("expert_bias", r.ExpertBias)
            .WithAll(Config());

    private IEnumerable<KeyValuePair<string, object?>> Config() =>
        [
            new("steps", s.Steps),
            new("world", World),
            new("sp", s.Sp),
            new("layout", s.Layout),
            new("sharding", s.Sharding),
            new("tokens", s.Tokens),
            new("dim", s.Dim),
            new("hidden", s.Hidden),
            new("experts", s.Experts),
            new("top_k", s.TopK),
            new("shared_hidden", s.SharedHidden),
            new("score_func", s.ScoreFunc),
            new("route_norm", s.RouteNorm),
            new("route_scale", s.RouteScale),
            new("expert_groups", s.ExpertGroups),
            new("limited_groups", s.LimitedGroups),
            new("score_before_experts", s.ScoreBeforeExperts),
            new("lr", s.LearningRate),
            new("bias_update_coeff", s.BiasUpdateCoeff),
            new("seed", s.Seed),
            new("device", s.Device ?? "host"),
            new("gemm_dtype", s.BFloat16Products ? "bf16" : "f32"),
            new(
                "batch",
                TrainOptions.NameOf(
                    s.BatchKind ?? TrainOptions.DefaultBatch(ComputeOptions.Parse(s.Device, s.Gpus).Device)
                )
            ),
            new("comm", s.Comm ?? "inproc"),
        ];
}
