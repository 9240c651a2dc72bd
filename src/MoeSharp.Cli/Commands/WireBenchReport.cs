using System.Globalization;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Cli.Output;
using MoeSharp.Collectives;
using MoeSharp.Quantization;
using MoeSharp.Tensors;
using Spectre.Console;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe bench --wire fp8</c>: FP8 rows on the wire beside native rows in one run, as a table and
/// <c>moesharp-metrics/1</c> records (kind <c>wire</c> or <c>wire_layer_error</c>). Dispatch mode measures the bytes
/// the forward exchange moves (<see cref="WireBenchmark"/>); with <c>--layer</c>, the layer output's error
/// (<see cref="Fp8LayerError"/>).
/// </summary>
internal static class WireBenchReport
{
    /// <summary>The option errors of <c>--wire</c>, or null.</summary>
    public static string? Check(BenchSettings s)
    {
        try
        {
            if (WireOption.Parse(s.Wire) is not Dispatch.RowWireFormat.Fp8E4M3)
                return null;
            string? otherMode =
                s.Uneven ? "--uneven"
                : s.Gemm ? "--gemm"
                : s.Traffic ? "--traffic"
                : s.Profile ? "--profile"
                : s.Device is not (null or "host") ? $"--device {s.Device}"
                : s.Comm is not (null or "inproc") ? $"--comm {s.Comm}"
                : null;
            if (otherMode is not null)
                return $"--wire fp8 compares on the host with in-process ranks, not with {otherMode}";
            if (s.Metrics is not null)
                OutputPaths.CheckFile("--metrics", s.Metrics);
            if (s.Warmup < 0)
                return $"--warmup {s.Warmup} must not be negative";
            if (s.Repeats < 1)
                return $"--repeats {s.Repeats} must be at least 1";
            _ = RunSettings.ParseScoreBefore(s.Score);
            if (s.Layer)
            {
                if (s.World != 1)
                    return "--wire fp8 --layer runs one rank: leave --world at 1";
                LayerBenchmark.Shape layer = LayerShape(s);
                if (layer.Tokens < 1 || layer.Dim < 1 || layer.Hidden < 1 || layer.Experts < 1 || layer.TopK < 1)
                    return $"--tokens {layer.Tokens}, --dim {layer.Dim}, --hidden {layer.Hidden}, --experts "
                        + $"{layer.Experts} and --top-k {layer.TopK} must be positive";
                if (layer.TopK > layer.Experts)
                    return $"--top-k {layer.TopK} must not exceed --experts {layer.Experts}";
                if (
                    layer.Rows * Math.Max(layer.Dim, layer.Hidden) > int.MaxValue
                    || (long)layer.Experts * layer.Dim * layer.Hidden > int.MaxValue
                )
                    return $"--tokens {layer.Tokens} × --top-k {layer.TopK} rows or the expert weights exceed 2^31 "
                        + "elements";
                var memory = Faults.CommandMemory.LayerWireError(layer, s.Preset);
                return memory.Successful ? null : memory.Message;
            }
            if (s.World < 2)
                return $"--wire fp8 measures the bytes sent between ranks: --world {s.World} must be at least 2";
            BenchShape shape = DispatchShape(s);
            if (shape.Tokens < 0 || shape.Dim < 1 || shape.Experts < 1 || shape.TopK < 1)
                return $"--tokens {shape.Tokens}, --dim {shape.Dim}, --experts {shape.Experts} and --top-k "
                    + $"{shape.TopK} must be positive";
            if (shape.Experts % s.World != 0)
                return $"--experts {shape.Experts} must be a multiple of --world {s.World}";
            if (shape.TopK > shape.Experts)
                return $"--top-k {shape.TopK} must not exceed --experts {shape.Experts}";
            // Two dispatchers (native and FP8 wire) each hold a round's buffers at once.
            var limits = Faults.SettingsLimits.Bench(s, shape, dispatchers: 2);
            return limits.Successful ? null : limits.Message;
        }
        catch (ArgumentException ex)
        {
            return ex.Message;
        }
    }

    /// <summary>The dispatch shape: <see cref="BenchShape.Resolve"/>, with <c>--tokens</c> overriding a
    /// preset's.</summary>
    private static BenchShape DispatchShape(BenchSettings s) =>
        BenchShape.Resolve(s) with
        {
            Tokens = s.TokensOption ?? BenchShape.Resolve(s).Tokens,
        };

    /// <summary>The layer shape: <see cref="LayerBenchReport.Resolve"/>, with <c>--tokens</c> overriding a
    /// preset's.</summary>
    private static LayerBenchmark.Shape LayerShape(BenchSettings s)
    {
        LayerBenchmark.Shape shape = LayerBenchReport.Resolve(s);
        return shape with { Tokens = s.TokensOption ?? shape.Tokens };
    }

    public static int Run(BenchSettings s) => s.Layer ? RunLayer(s) : RunDispatch(s);

    private static int RunDispatch(BenchSettings s)
    {
        BenchShape shape = DispatchShape(s);
        bool scoreBefore = RunSettings.ParseScoreBefore(s.Score);
        WireBenchmark.Result r = InProcessWorld.Run(
            s.World,
            world => WireBenchmark.RunRank(world, shape, scoreBefore, s.Warmup, s.Repeats, s.Seed)
        )[0];
        double ratio = (double)r.Fp8.Bytes / r.Native.Bytes;
        int nativeRow = shape.Dim * shape.RowType.SizeOf();
        var table = new Table().Border(TableBorder.Rounded);
        foreach (
            string column in new[] { "wire", "bytes/row", "forward bytes (all ranks)", "dispatch ms", "combine ms" }
        )
            table.AddColumn(new TableColumn(column).RightAligned());
        table.AddRow(
            shape.RowTypeName,
            nativeRow.ToString(CultureInfo.InvariantCulture),
            r.Native.Bytes.ToString("N0", CultureInfo.InvariantCulture),
            Ms(r.Native.DispatchSeconds),
            Ms(r.Native.CombineSeconds)
        );
        table.AddRow(
            "fp8",
            Fp8WireRows.BytesPerRow(shape.Dim).ToString(CultureInfo.InvariantCulture),
            r.Fp8.Bytes.ToString("N0", CultureInfo.InvariantCulture),
            Ms(r.Fp8.DispatchSeconds),
            Ms(r.Fp8.CombineSeconds)
        );
        if (!s.Json)
        {
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    $"FP8 rows on the wire vs {shape.RowTypeName}: {shape.Name}, {s.World} in-process ranks, "
                        + $"T = {shape.Tokens}/rank, D = {shape.Dim}, E = {shape.Experts}, K = {shape.TopK}, medians "
                        + $"of {s.Repeats} (timed to a barrier, {Environment.ProcessorCount} host cores)"
                )
            );
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    $"measured bytes ratio fp8 / {shape.RowTypeName}: {ratio:F4}; combine output error (scaled-identity "
                        + $"experts), per token ‖Δ‖/‖y‖: max {r.MaxTokenError:E2}, mean {r.MeanTokenError:E2}"
                )
            );
        }
        using MetricsSink? metrics = MetricsSink.Open(s.Metrics, toStdout: s.Json);
        foreach (var (wire, f) in new[] { (shape.RowTypeName, r.Native), ("fp8", r.Fp8) })
        {
            metrics?.Write(
                MetricsRecord
                    .Create("bench", "measurement")
                    .With("kind", "wire")
                    .With("wire", wire)
                    .With("bytes", f.Bytes)
                    .With("dispatch_ms", f.DispatchSeconds * 1e3)
                    .With("combine_ms", f.CombineSeconds * 1e3)
                    .With("bytes_ratio", ratio)
                    .With("max_token_error", r.MaxTokenError)
                    .With("mean_token_error", r.MeanTokenError)
                    .With("iters", s.Repeats)
                    .With("world", s.World)
                    .With("device", "host")
                    .With("preset", s.Preset is null ? null : shape.Name)
                    .With("tokens", shape.Tokens)
                    .With("dim", shape.Dim)
                    .With("experts", shape.Experts)
                    .With("top_k", shape.TopK)
                    .With("dtype", shape.RowTypeName)
            );
        }
        return 0;
    }

    private static int RunLayer(BenchSettings s)
    {
        LayerBenchmark.Shape shape = LayerShape(s);
        IReadOnlyList<Fp8LayerError.Row> rows = Fp8LayerError.Run(shape, s.Repeats, s.Seed);
        if (!s.Json)
        {
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    $"layer output, FP8 rows on the wire vs rows of bfloat16 values (host, one rank): {shape.Name}, "
                        + $"T = {shape.Tokens}, D = {shape.Dim}, H = {shape.Hidden}, E = {shape.Experts}, "
                        + $"K = {shape.TopK}, {s.Repeats} batch(es) per input kind, seed {s.Seed}"
                )
            );
            var table = new Table().Border(TableBorder.Rounded);
            foreach (string column in new[] { "inputs", "tokens", "max ‖Δ‖/‖y‖", "mean ‖Δ‖/‖y‖", "max |Δ| / max |y|" })
                table.AddColumn(new TableColumn(column).RightAligned());
            foreach (Fp8LayerError.Row row in rows)
            {
                table.AddRow(
                    Markup.Escape(row.Inputs),
                    row.Tokens.ToString(CultureInfo.InvariantCulture),
                    row.MaxTokenError.ToString("E2", CultureInfo.InvariantCulture),
                    row.MeanTokenError.ToString("E2", CultureInfo.InvariantCulture),
                    row.MaxElement.ToString("E2", CultureInfo.InvariantCulture)
                );
            }
            AnsiConsole.Write(table);
        }
        using MetricsSink? metrics = MetricsSink.Open(s.Metrics, toStdout: s.Json);
        foreach (Fp8LayerError.Row row in rows)
        {
            metrics?.Write(
                MetricsRecord
                    .Create("bench", "measurement")
                    .With("kind", "wire_layer_error")
                    .With("inputs", row.Inputs)
                    .With("tokens_measured", row.Tokens)
                    .With("max_token_error", row.MaxTokenError)
                    .With("mean_token_error", row.MeanTokenError)
                    .With("max_element_error", row.MaxElement)
                    .With("preset", s.Preset is null ? null : shape.Name)
                    .With("tokens", shape.Tokens)
                    .With("dim", shape.Dim)
                    .With("hidden", shape.Hidden)
                    .With("experts", shape.Experts)
                    .With("top_k", shape.TopK)
                    .With("seed", s.Seed)
            );
        }
        return 0;
    }

    private static string Ms(double seconds) => (seconds * 1e3).ToString("F2", CultureInfo.InvariantCulture);
}
