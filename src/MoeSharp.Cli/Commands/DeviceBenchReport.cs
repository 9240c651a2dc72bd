using System.Globalization;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Cli.Output;
using MoeSharp.Cuda;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Spectre.Console;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe bench --device cuda</c>: runs <see cref="DeviceDispatchBenchmark"/> on one rank per GPU and prints a table,
/// or with <c>--json</c> one <c>moesharp-metrics/1</c> line per measurement (docs/metrics.md; the fields
/// <c>bench/gpu/summarize.py</c> pairs with the PyTorch reference's are those of <c>bench/reference</c>).
/// </summary>
internal static class DeviceBenchReport
{
    public static int Run(BenchSettings s, ComputeOptions compute, CommKind comm, bool scoreBefore)
    {
        if (s.Gemm)
            return RunGemm(s, compute);
        BenchShape shape = BenchShape.Resolve(s);
        int world =
            compute.Device == DeviceKind.Cuda && compute.Gpus == 0
                ? ComputeOptions.CudaDeviceCount()
                : Math.Max(1, compute.Gpus);
        if (compute.Device == DeviceKind.IlgpuCpu)
            world = s.World;
        if (shape.Experts % world != 0)
            throw new ArgumentException($"--experts {shape.Experts} must be a multiple of the {world} ranks");
        ProgressLine progress = ProgressLine.ForStderr("bench");
        progress.Report(0, s.Warmup + s.Repeats, "dispatch + combine runs (drawing inputs)");
        var outcome = RankLauncher.Run(
            comm,
            world,
            group =>
            {
                using DeviceRank device = compute.CreateRank(group)!;
                var result = DeviceDispatchBenchmark.RunRank(
                    group,
                    device,
                    shape.Tokens,
                    shape.Dim,
                    shape.Experts,
                    shape.TopK,
                    scoreBefore,
                    s.Warmup,
                    s.Repeats,
                    s.Seed,
                    s.Profile,
                    shape.RowType,
                    (done, total) => progress.Report(done, total, "dispatch + combine runs")
                );
                return new Tuple<DeviceDispatchBenchmark.Result, string, int>(
                    result,
                    device.Backend.Accelerator.Name,
                    group.Size
                );
            },
            null
        );
        progress.Finish();
        if (outcome is null)
            return 0;
        var (r, card, ranks) = outcome;
        long rowBytes = (long)shape.Dim * shape.RowType.SizeOf();
        long exchangeBytes = 2 * r.RoutedRows * rowBytes;
        long localBytes = 2 * (r.RoutedRows + shape.Tokens) * rowBytes;

        var lines = new List<(string Kind, DeviceDispatchBenchmark.Stats Stats, long Bytes, string? Step)>
        {
            ("dispatch_combine", r.DispatchCombine, exchangeBytes, null),
            ("local_step", r.Dispatch, (r.RoutedRows + shape.Tokens) * rowBytes, "dispatch"),
            ("copy", r.Copy, 2 * r.RoutedRows * rowBytes, null),
        };
        // On one GPU dispatch + combine is the local work alone: count the bytes it must move.
        if (ranks == 1)
            lines.Add(("local", r.DispatchCombine, localBytes, null));
        if (r.Exchange is { } ex)
            lines.Add(("exchange", ex, exchangeBytes, null));

        using (MetricsSink? metrics = MetricsSink.Open(s.Metrics, toStdout: s.Json))
        {
            foreach (var (kind, stats, bytes, step) in lines)
            {
                MetricsRecord record = MetricsRecord
                    .Create("bench", "measurement")
                    .With("kind", kind)
                    .With("impl", kind == "copy" ? "moesharp-copy" : "moesharp-" + compute.DeviceName);
                // bench/gpu/summarize.py reads "step" as the phase of a local_step line.
                if (step is not null)
                    record.With("step", step);
                metrics?.Write(
                    record
                        .With("ms", stats.Median * 1e3)
                        .With("ms_min", stats.Min * 1e3)
                        .With("ms_p90", stats.P90 * 1e3)
                        .With("iters", stats.Iterations)
                        .With("bytes", bytes)
                        .With("gb_per_s", bytes / stats.Median / 1e9)
                        .With("card", card)
                        .With("gpus", ranks)
                        .With("world", ranks)
                        .With("comm", comm == CommKind.Mpi ? "mpi" : "inproc")
                        .With("device", compute.DeviceName)
                        .With("exchanger", r.Exchanger)
                        .With("preset", shape.Name)
                        .With("tokens", shape.Tokens)
                        .With("dim", shape.Dim)
                        .With("experts", shape.Experts)
                        .With("top_k", shape.TopK)
                        .With("dtype", shape.RowTypeName)
                        .With("score_before_experts", scoreBefore)
                        .With("warmup", s.Warmup)
                        .With("seed", s.Seed)
                );
            }
        }
        if (s.Json)
            return 0;
        AnsiConsole.MarkupLine(
            Markup.Escape(
                $"{card} × {ranks} ({r.Exchanger}), preset {shape.Name}: T = {shape.Tokens} per rank, D = {shape.Dim}, "
                    + $"E = {shape.Experts}, K = {shape.TopK}, {shape.RowType}, median of {s.Repeats} after {s.Warmup} warm-up, slowest rank"
            )
        );
        var table = new Table().Border(TableBorder.Rounded);
        foreach (string column in new[] { "measurement", "ms", "GB/s", "MB moved" })
            table.AddColumn(column);
        foreach (var (kind, stats, bytes, step) in lines)
        {
            table.AddRow(
                step is null ? kind : $"{kind} ({step})",
                (stats.Median * 1e3).ToString("F3", CultureInfo.InvariantCulture),
                (bytes / stats.Median / 1e9).ToString("F1", CultureInfo.InvariantCulture),
                (bytes / 1e6).ToString("F0", CultureInfo.InvariantCulture)
            );
        }
        AnsiConsole.Write(table);
        if (r.KernelMilliseconds is { } perKernel)
        {
            AnsiConsole.MarkupLine("kernel time per dispatch + combine (rank 0, synchronized around each kernel):");
            foreach (var (name, ms) in perKernel.OrderByDescending(kv => kv.Value))
            {
                AnsiConsole.MarkupLine(Markup.Escape($"  {name, -20} {ms, 8:F3} ms"));
            }
        }
        return 0;
    }

    /// <summary><c>--gemm</c>: grouped against dense cuBLAS GEMM on GPU 0.</summary>
    private static int RunGemm(BenchSettings s, ComputeOptions compute)
    {
        if (compute.Device != DeviceKind.Cuda)
            throw new ArgumentException("--gemm needs --device cuda (cuBLAS)");
        using IlgpuBackend backend = IlgpuBackend.CreateCuda(0);
        List<GroupedGemmBenchmark.Result> results = GroupedGemmBenchmark.Run(backend, s.Warmup, s.Repeats);
        string card = backend.Accelerator.Name;
        using (MetricsSink? metrics = MetricsSink.Open(s.Metrics, toStdout: s.Json))
        {
            foreach (var r in results)
            {
                foreach (
                    var (impl, seconds, groups) in new[]
                    {
                        ("moesharp-cublas", r.GroupedSeconds, r.Shape.Groups),
                        ("moesharp-cublas-dense", r.DenseSeconds, 1),
                    }
                )
                {
                    metrics?.Write(
                        MetricsRecord
                            .Create("bench", "measurement")
                            .With("kind", "gemm")
                            .With("impl", impl)
                            .With("ms", seconds * 1e3)
                            .With("iters", s.Repeats)
                            .With("tflops", r.Flops / seconds / 1e12)
                            .With("card", card)
                            .With("gpus", 1)
                            .With("device", "cuda")
                            .With("preset", r.Shape.Name)
                            .With("dtype", "bf16")
                            .With("rows", r.Shape.Rows)
                            .With("groups", groups)
                            .With("n", r.Shape.N)
                            .With("k", r.Shape.K)
                            .With("flops", r.Flops)
                            .With("warmup", s.Warmup)
                    );
                }
            }
        }
        if (s.Json)
            return 0;
        var table = new Table().Border(TableBorder.Rounded);
        foreach (
            string column in new[]
            {
                "shape",
                "rows × n × k",
                "groups",
                "grouped ms",
                "grouped TFLOP/s",
                "dense ms",
                "dense TFLOP/s",
                "grouped / dense",
            }
        )
            table.AddColumn(column);
        foreach (var r in results)
        {
            double g = r.Flops / r.GroupedSeconds / 1e12,
                d = r.Flops / r.DenseSeconds / 1e12;
            table.AddRow(
                r.Shape.Name,
                $"{r.Shape.Rows} × {r.Shape.N} × {r.Shape.K}",
                r.Shape.Groups.ToString(CultureInfo.InvariantCulture),
                (r.GroupedSeconds * 1e3).ToString("F3", CultureInfo.InvariantCulture),
                g.ToString("F0", CultureInfo.InvariantCulture),
                (r.DenseSeconds * 1e3).ToString("F3", CultureInfo.InvariantCulture),
                d.ToString("F0", CultureInfo.InvariantCulture),
                (g / d).ToString("P0", CultureInfo.InvariantCulture)
            );
        }
        AnsiConsole.MarkupLine(
            Markup.Escape(
                $"{card}: cuBLAS bfloat16 GEMMs, float32 accumulate and output, median of {s.Repeats} after {s.Warmup} warm-up"
            )
        );
        AnsiConsole.Write(table);
        return 0;
    }
}
