using System.Globalization;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Cli.Output;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe bench</c>: median dispatch and combine times on the host with the effective bandwidth (bytes that
/// must move over the time), next to the machine's memory-copy bandwidth measured the same way; on several
/// ranks also the row exchange alone, and on MPI raw <c>MPI_Alltoallv</c> at the same message sizes. With
/// <c>--device</c> it hands over to <see cref="DeviceBenchReport"/>.
/// </summary>
internal sealed class BenchCommand : Command<BenchSettings>
{
    public override int Execute(CommandContext context, BenchSettings s, CancellationToken cancellationToken)
    {
        if (WireOption.Parse(s.Wire) is MoeSharp.Dispatch.RowWireFormat.Fp8E4M3)
            return WireBenchReport.Run(s);
        if (s.Layer)
            return LayerBenchReport.Run(s);
        bool scoreBefore = RunSettings.ParseScoreBefore(s.Score);
        CommKind comm = CommKinds.Parse(s.Comm);
        ComputeOptions compute = ComputeOptions.Parse(s.Device, s.Gpus);
        if (CapacityOptions.Parse(s.CapacityFactor, s.CapacityRows) is { } capacity)
            return CapacityBenchReport.Run(s, capacity, compute, scoreBefore);
        if (s.Uneven)
            return UnevenBenchReport.Run(s, compute, comm, scoreBefore);
        if (compute.OnDevice)
            return DeviceBenchReport.Run(s, compute, comm, scoreBefore);
        BenchShape shape = BenchShape.Resolve(s);
        ProgressLine progress = ProgressLine.ForStderr("bench");
        progress.Report(0, s.Warmup + s.Repeats, "dispatch + combine runs (drawing inputs)");
        var outcome = RankLauncher.Run(
            comm,
            s.World,
            world =>
            {
                if (shape.Experts % world.Size != 0)
                    throw new ArgumentException(
                        $"--experts {shape.Experts} must be a multiple of the world size {world.Size}"
                    );
                var result = DispatchBenchmark.RunRank(
                    world,
                    shape.Tokens,
                    shape.Dim,
                    shape.Experts,
                    shape.TopK,
                    scoreBefore,
                    s.Warmup,
                    s.Repeats,
                    s.Seed,
                    shape.RowType,
                    (done, total) => progress.Report(done, total, "dispatch + combine runs"),
                    s.Traffic
                );
                // Every rank copies at the same time, on its share of the threads: the reference is what this rank's
                // bytes take to copy on the cores the ranks share, as its dispatch does.
                double copy = CopyBandwidth.MeasureTogether(world, result.DispatchBytes / 2, s.Warmup, s.Repeats);
                return new Tuple<DispatchBenchmark.Result, double, int>(result, copy, world.Size);
            },
            null,
            checkJobSize: size =>
            {
                if (shape.Experts % size != 0)
                    throw new ArgumentException(
                        $"--experts {shape.Experts} must be a multiple of the world size {size}"
                    );
            }
        );
        if (outcome is null)
            return 0; // not rank 0 of an MPI job
        var (r, copy, worldSize) = outcome;

        double dispatchGbs = r.DispatchBytes / r.DispatchSeconds / 1e9;
        double combineGbs = r.CombineBytes / r.CombineSeconds / 1e9;
        double totalGbs = (r.DispatchBytes + r.CombineBytes) / (r.DispatchSeconds + r.CombineSeconds) / 1e9;
        double copyGbs = copy / 1e9;
        double? wrapperGbs = r.Exchange is { } e ? e.BytesSent / e.WrapperSeconds / 1e9 : null;
        double? rawGbs = r.Exchange is { RawSeconds: double raw } e2 ? e2.BytesSent / raw / 1e9 : null;
        progress.Finish();
        var measurements = new List<(string Kind, string Impl, double Seconds, long Bytes)>
        {
            ("dispatch", "moesharp-host", r.DispatchSeconds, r.DispatchBytes),
            ("combine", "moesharp-host", r.CombineSeconds, r.CombineBytes),
            (
                "dispatch_combine",
                "moesharp-host",
                r.DispatchSeconds + r.CombineSeconds,
                r.DispatchBytes + r.CombineBytes
            ),
            ("copy", "moesharp-copy", r.DispatchBytes / 2 / copy, r.DispatchBytes / 2),
        };
        if (r.WithTraffic is { } on)
        {
            measurements.Add(("dispatch", "moesharp-host-traffic", on.Dispatch, r.DispatchBytes));
            measurements.Add(("combine", "moesharp-host-traffic", on.Combine, r.CombineBytes));
            measurements.Add(
                (
                    "dispatch_combine",
                    "moesharp-host-traffic",
                    on.Dispatch + on.Combine,
                    r.DispatchBytes + r.CombineBytes
                )
            );
            measurements.Add(("traffic_work", "moesharp-host-traffic", r.TelemetryWorkSeconds!.Value, 0));
            (double controlDispatch, double controlCombine) = r.Control!.Value;
            measurements.Add(
                (
                    "dispatch_combine",
                    "moesharp-host-control",
                    controlDispatch + controlCombine,
                    r.DispatchBytes + r.CombineBytes
                )
            );
        }
        if (r.Exchange is { } exchange)
        {
            measurements.Add(("exchange", "moesharp-host", exchange.WrapperSeconds, exchange.BytesSent));
            if (exchange.RawSeconds is double rawAlltoallv)
                measurements.Add(("mpi_alltoallv", "mpi-raw", rawAlltoallv, exchange.BytesSent));
        }
        using (MetricsSink? metrics = MetricsSink.Open(s.Metrics, toStdout: s.Json))
        {
            foreach (var (kind, impl, seconds, bytes) in measurements)
            {
                metrics?.Write(
                    MetricsRecord
                        .Create("bench", "measurement")
                        .With("kind", kind)
                        .With("impl", impl)
                        .With("ms", seconds * 1e3)
                        .With("iters", s.Repeats)
                        .With("bytes", bytes)
                        .With("gb_per_s", bytes / seconds / 1e9)
                        .With("world", worldSize)
                        .With("comm", comm == CommKind.Mpi ? "mpi" : "inproc")
                        .With("device", "host")
                        .With("preset", s.Preset is null ? null : shape.Name)
                        .With("tokens", shape.Tokens)
                        .With("dim", shape.Dim)
                        .With("experts", shape.Experts)
                        .With("top_k", shape.TopK)
                        .With("dtype", shape.RowTypeName)
                        .With("score_before_experts", scoreBefore)
                        .With("warmup", s.Warmup)
                        .With("seed", s.Seed)
                        .With("cores", Environment.ProcessorCount)
                );
            }
        }
        if (s.Json)
            return 0;
        AnsiConsole.MarkupLine(
            $"world {worldSize} ({comm}), {(s.Preset is null ? "" : $"preset {shape.Name}: ")}T = {shape.Tokens} per rank, D = {shape.Dim}, E = {shape.Experts}, K = {shape.TopK}, {shape.RowType}, "
                + $"score {(scoreBefore ? "before" : "after")}, {Environment.ProcessorCount} cores, median of {s.Repeats} after {s.Warmup} warm-up, rank 0"
        );
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("step");
        table.AddColumn(new TableColumn("time (ms)").RightAligned());
        table.AddColumn(new TableColumn("bytes moved (MB)").RightAligned());
        table.AddColumn(new TableColumn("GB/s").RightAligned());
        table.AddColumn(new TableColumn("of reference").RightAligned());
        void Row(string step, double seconds, long bytes, double gbs, double reference) =>
            table.AddRow(step, $"{seconds * 1e3:F2}", $"{bytes / 1e6:F0}", $"{gbs:F2}", $"{gbs / reference:P0}");
        Row("dispatch", r.DispatchSeconds, r.DispatchBytes, dispatchGbs, copyGbs);
        Row("combine", r.CombineSeconds, r.CombineBytes, combineGbs, copyGbs);
        Row(
            "dispatch + combine",
            r.DispatchSeconds + r.CombineSeconds,
            r.DispatchBytes + r.CombineBytes,
            totalGbs,
            copyGbs
        );
        table.AddRow("memory copy (reference)", "", "", $"{copyGbs:F2}", "100%");
        if (r.Exchange is { } ex)
        {
            double reference = rawGbs ?? wrapperGbs!.Value;
            Row("row exchange (all-to-all-v)", ex.WrapperSeconds, ex.BytesSent, wrapperGbs!.Value, reference);
            if (ex.RawSeconds is double rawSeconds)
                Row("raw MPI_Alltoallv (reference)", rawSeconds, ex.BytesSent, rawGbs!.Value, reference);
        }
        if (r.WithTraffic is { } withTraffic)
        {
            double onSeconds = withTraffic.Dispatch + withTraffic.Combine;
            Row(
                "dispatch (traffic on)",
                withTraffic.Dispatch,
                r.DispatchBytes,
                r.DispatchBytes / withTraffic.Dispatch / 1e9,
                copyGbs
            );
            Row(
                "combine (traffic on)",
                withTraffic.Combine,
                r.CombineBytes,
                r.CombineBytes / withTraffic.Combine / 1e9,
                copyGbs
            );
            Row(
                "dispatch + combine (traffic on)",
                onSeconds,
                r.DispatchBytes + r.CombineBytes,
                (r.DispatchBytes + r.CombineBytes) / onSeconds / 1e9,
                copyGbs
            );
        }
        AnsiConsole.Write(table);
        if (r.WithTraffic is { } traffic)
        {
            double off = r.DispatchSeconds + r.CombineSeconds,
                onMs = traffic.Dispatch + traffic.Combine;
            double work = r.TelemetryWorkSeconds!.Value;
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"traffic telemetry: dispatch + combine {onMs * 1e3:F2} ms on vs {off * 1e3:F2} ms off "
                            + $"(medians, same loop, rotating order): {(onMs / off - 1) * 100:+0.00;-0.00} %"
                    )
                )
            );
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"  median of the {s.Repeats} back-to-back pairs' ratios: "
                            + $"{r.PairedTrafficOverhead!.Value * 100:+0.00;-0.00} %"
                    )
                )
            );
            (double controlDispatch, double controlCombine) = r.Control!.Value;
            double control = controlDispatch + controlCombine;
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"  A/A control (a third dispatcher, telemetry off): {control * 1e3:F2} ms, "
                            + $"{(control / off - 1) * 100:+0.00;-0.00} % (medians), "
                            + $"{r.PairedControlDifference!.Value * 100:+0.00;-0.00} % (pairs): the harness's own spread"
                    )
                )
            );
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"  the telemetry's own work timed alone: {work * 1e3:F3} ms per dispatch + combine = "
                            + $"{work / off * 100:F3} % of the off median"
                    )
                )
            );
        }
        return 0;
    }
}
