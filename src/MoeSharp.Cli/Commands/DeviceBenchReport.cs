using System.Globalization;
using System.Text.Json;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Cuda;
using MoeSharp.Tensors;
using Spectre.Console;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe bench --device cuda</c>: runs <see cref="DeviceDispatchBenchmark"/> on one rank per GPU and prints a table, or
/// with <c>--json</c> one line per measurement in the schema of <c>bench/reference</c> (<c>moesharp-bench/1</c>), so
/// <c>bench/gpu/summarize.py</c> can set it beside the PyTorch reference.
/// </summary>
internal static class DeviceBenchReport
{
    public static int Run(BenchSettings s, ComputeOptions compute, CommKind comm, bool scoreBefore)
    {
        if (s.Gemm) return RunGemm(s, compute);
        BenchShape shape = BenchShape.Resolve(s);
        int world = compute.Device == DeviceKind.Cuda && compute.Gpus == 0 ? ComputeOptions.CudaDeviceCount() : Math.Max(1, compute.Gpus);
        if (compute.Device == DeviceKind.IlgpuCpu) world = s.World;
        if (shape.Experts % world != 0) throw new ArgumentException($"--experts {shape.Experts} must be a multiple of the {world} ranks");
        var outcome = RankLauncher.Run(comm, world, group =>
        {
            using DeviceRank device = compute.CreateRank(group)!;
            var result = DeviceDispatchBenchmark.RunRank(group, device, shape.Tokens, shape.Dim, shape.Experts, shape.TopK,
                scoreBefore, s.Warmup, s.Repeats, s.Seed, s.Profile, shape.RowType);
            return new Tuple<DeviceDispatchBenchmark.Result, string, int>(result, device.Backend.Accelerator.Name, group.Size);
        }, null);
        if (outcome is null) return 0;
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
        if (ranks == 1) lines.Add(("local", r.DispatchCombine, localBytes, null));
        if (r.Exchange is { } ex) lines.Add(("exchange", ex, exchangeBytes, null));

        if (s.Json)
        {
            foreach (var (kind, stats, bytes, step) in lines)
            {
                var record = new Dictionary<string, object?>
                {
                    ["schema"] = "moesharp-bench/1", ["kind"] = kind, ["impl"] = kind == "copy" ? "moesharp-copy" : "moesharp-cuda",
                    ["card"] = card, ["gpus"] = ranks, ["preset"] = shape.Name, ["tokens"] = shape.Tokens, ["dim"] = shape.Dim,
                    ["experts"] = shape.Experts, ["top_k"] = shape.TopK, ["dtype"] = shape.RowTypeName, ["exchanger"] = r.Exchanger,
                    ["ms"] = stats.Median * 1e3, ["ms_min"] = stats.Min * 1e3, ["ms_p90"] = stats.P90 * 1e3, ["iters"] = stats.Iterations,
                    ["bytes"] = bytes, ["gb_per_s"] = bytes / stats.Median / 1e9,
                };
                if (step is not null) record["step"] = step;
                Console.WriteLine(JsonSerializer.Serialize(record, Faults.FiniteJson.Options));
            }
            return 0;
        }
        AnsiConsole.MarkupLine(Markup.Escape($"{card} × {ranks} ({r.Exchanger}), preset {shape.Name}: T = {shape.Tokens} per rank, D = {shape.Dim}, " +
            $"E = {shape.Experts}, K = {shape.TopK}, {shape.RowType}, median of {s.Repeats} after {s.Warmup} warm-up, slowest rank"));
        var table = new Table().Border(TableBorder.Rounded);
        foreach (string column in new[] { "measurement", "ms", "GB/s", "MB moved" }) table.AddColumn(column);
        foreach (var (kind, stats, bytes, step) in lines)
        {
            table.AddRow(step is null ? kind : $"{kind} ({step})", (stats.Median * 1e3).ToString("F3", CultureInfo.InvariantCulture),
                (bytes / stats.Median / 1e9).ToString("F1", CultureInfo.InvariantCulture), (bytes / 1e6).ToString("F0", CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        if (r.KernelMilliseconds is { } perKernel)
        {
            AnsiConsole.MarkupLine("kernel time per dispatch + combine (rank 0, synchronized around each kernel):");
            foreach (var (name, ms) in perKernel.OrderByDescending(kv => kv.Value))
            {
                AnsiConsole.MarkupLine(Markup.Escape($"  {name,-20} {ms,8:F3} ms"));
            }
        }
        return 0;
    }

    /// <summary><c>--gemm</c>: grouped against dense cuBLAS GEMM on GPU 0.</summary>
    private static int RunGemm(BenchSettings s, ComputeOptions compute)
    {
        if (compute.Device != DeviceKind.Cuda) throw new ArgumentException("--gemm needs --device cuda (cuBLAS)");
        using IlgpuBackend backend = IlgpuBackend.CreateCuda(0);
        List<GroupedGemmBenchmark.Result> results = GroupedGemmBenchmark.Run(backend, s.Warmup, s.Repeats);
        string card = backend.Accelerator.Name;
        if (s.Json)
        {
            foreach (var r in results)
            {
                foreach (var (impl, seconds, groups) in new[] { ("moesharp-cublas", r.GroupedSeconds, r.Shape.Groups), ("moesharp-cublas-dense", r.DenseSeconds, 1) })
                {
                    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                    {
                        ["schema"] = "moesharp-bench/1", ["kind"] = "gemm", ["impl"] = impl, ["card"] = card, ["gpus"] = 1,
                        ["preset"] = r.Shape.Name, ["dtype"] = "bf16", ["rows"] = r.Shape.Rows, ["groups"] = groups, ["n"] = r.Shape.N,
                        ["k"] = r.Shape.K, ["flops"] = r.Flops, ["ms"] = seconds * 1e3, ["iters"] = s.Repeats, ["tflops"] = r.Flops / seconds / 1e12,
                    }));
                }
            }
            return 0;
        }
        var table = new Table().Border(TableBorder.Rounded);
        foreach (string column in new[] { "shape", "rows × n × k", "groups", "grouped ms", "grouped TFLOP/s", "dense ms", "dense TFLOP/s", "grouped / dense" }) table.AddColumn(column);
        foreach (var r in results)
        {
            double g = r.Flops / r.GroupedSeconds / 1e12, d = r.Flops / r.DenseSeconds / 1e12;
            table.AddRow(r.Shape.Name, $"{r.Shape.Rows} × {r.Shape.N} × {r.Shape.K}", r.Shape.Groups.ToString(CultureInfo.InvariantCulture),
                (r.GroupedSeconds * 1e3).ToString("F3", CultureInfo.InvariantCulture), g.ToString("F0", CultureInfo.InvariantCulture),
                (r.DenseSeconds * 1e3).ToString("F3", CultureInfo.InvariantCulture), d.ToString("F0", CultureInfo.InvariantCulture),
                (g / d).ToString("P0", CultureInfo.InvariantCulture));
        }
        AnsiConsole.MarkupLine(Markup.Escape($"{card}: cuBLAS bfloat16 GEMMs, float32 accumulate and output, median of {s.Repeats} after {s.Warmup} warm-up"));
        AnsiConsole.Write(table);
        return 0;
    }
}
