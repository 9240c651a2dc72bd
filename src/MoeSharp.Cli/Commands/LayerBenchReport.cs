using System.Globalization;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Cli.Output;
using MoeSharp.Cuda;
using MoeSharp.Verification;
using Spectre.Console;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe bench --layer</c>: the MoE layer step (<see cref="LayerBenchmark"/>) on the host, ILGPU's CPU accelerator or
/// a GPU, as a table; <c>--metrics</c> / <c>--json</c> get one <c>moesharp-metrics/1</c> record (kind <c>layer</c>)
/// with the fields of <c>bench/reference/torchtitan_moe_layer.py</c>'s lines.
/// </summary>
internal static class LayerBenchReport
{
    /// <summary>The presets: Qwen3-30B-A3B-like and a small one (the GPU issue's shapes).</summary>
    public static LayerBenchmark.Shape Resolve(BenchSettings s) =>
        s.Preset switch
        {
            null => new LayerBenchmark.Shape("custom", s.Tokens, s.Dim, s.Hidden, s.Experts, s.TopK),
            "qwen3" => new LayerBenchmark.Shape("qwen3", 16384, 2048, 768, 128, 8),
            "small" => new LayerBenchmark.Shape("small", 8192, 1024, 1024, 16, 2),
            _ => throw new ArgumentException($"--preset '{s.Preset}' is not qwen3 or small (with --layer)"),
        };

    /// <summary>The option errors of <c>--layer</c>, or null.</summary>
    public static string? Check(BenchSettings s)
    {
        LayerBenchmark.Shape shape;
        ComputeOptions compute;
        bool bf16;
        try
        {
            shape = Resolve(s);
            compute = ComputeOptions.Parse(s.Device, s.Gpus);
            bf16 = BFloat16Products(s, compute);
            if (s.Metrics is not null)
                OutputPaths.CheckFile("--metrics", s.Metrics);
        }
        catch (ArgumentException ex)
        {
            return ex.Message;
        }
        if (s.World != 1 || s.Comm is not (null or "inproc") || s.Gpus is > 1)
            return "--layer runs one rank: leave --world, --comm and --gpus at 1";
        if (s.Gemm || s.Profile)
            return "--layer times every phase itself: it takes neither --gemm nor --profile";
        if (shape.Tokens < 1 || shape.Dim < 1 || shape.Hidden < 1 || shape.Experts < 1 || shape.TopK < 1)
            return $"--tokens {shape.Tokens}, --dim {shape.Dim}, --hidden {shape.Hidden}, --experts {shape.Experts} and --top-k {shape.TopK} must be positive";
        if (shape.TopK > shape.Experts)
            return $"--top-k {shape.TopK} must not exceed --experts {shape.Experts}";
        if (
            shape.Rows * Math.Max(shape.Dim, shape.Hidden) > int.MaxValue
            || (long)shape.Experts * shape.Dim * shape.Hidden > int.MaxValue
        )
            return $"--tokens {shape.Tokens} × --top-k {shape.TopK} rows of {Math.Max(shape.Dim, shape.Hidden)} or the expert weights exceed 2^31 elements";
        if (s.Warmup < 0)
            return $"--warmup {s.Warmup} must not be negative";
        if (s.Repeats < 1)
            return $"--repeats {s.Repeats} must be at least 1";
        // Last, once each option is in range: the step's memory, before anything is allocated.
        ValidationResult memory = Faults.CommandMemory.LayerBench(shape, s.Preset, bf16, compute);
        return memory.Successful ? null : memory.Message;
    }

    /// <summary>
    /// bfloat16 product inputs: the default on a device, refused on the host (its products are float32).
    /// </summary>
    private static bool BFloat16Products(BenchSettings s, ComputeOptions compute)
    {
        bool bf16 =
            (BenchShape.ParseRowType(s.DType) ?? (compute.OnDevice ? Tensors.DType.BFloat16 : Tensors.DType.Float32))
            == Tensors.DType.BFloat16;
        if (bf16 && !compute.OnDevice)
            throw new ArgumentException($"--dtype {s.DType}: bfloat16 products need --device cuda or ilgpu-cpu");
        return bf16;
    }

    public static int Run(BenchSettings s)
    {
        LayerBenchmark.Shape shape = Resolve(s);
        ComputeOptions compute = ComputeOptions.Parse(s.Device, s.Gpus);
        bool bf16 = BFloat16Products(s, compute);
        using IlgpuBackend? backend = compute.Device switch
        {
            DeviceKind.Cuda => IlgpuBackend.CreateCuda(0),
            DeviceKind.IlgpuCpu => IlgpuBackend.CreateCpu(),
            _ => null,
        };
        LayerBenchmark.Result r = LayerBenchmark.Run(backend, shape, bf16, s.Warmup, s.Repeats, s.Seed);
        double productTflops = shape.ProductFlops / r.ProductSeconds / 1e12;
        double? denseTflops = r.DenseProjectionSeconds is double d ? shape.ProjectionFlops / d / 1e12 : null;
        string dtype = bf16 ? "bf16" : "f32";
        using (MetricsSink? metrics = MetricsSink.Open(s.Metrics, toStdout: s.Json))
        {
            var phases = new Dictionary<string, double>();
            foreach (var (stage, phase, seconds) in r.Phases)
                phases[$"{stage} {phase}"] = seconds * 1e3;
            // The field names of bench/reference/torchtitan_moe_layer.py's lines, so the GPU script pairs the two.
            metrics?.Write(
                MetricsRecord
                    .Create("bench", "measurement")
                    .With("kind", "layer")
                    .With("impl", "moesharp-" + r.Device)
                    .With("card", r.Card)
                    .With("gpus", 1)
                    .With("preset", shape.Name)
                    .With("tokens", shape.Tokens)
                    .With("dim", shape.Dim)
                    .With("hidden", shape.Hidden)
                    .With("experts", shape.Experts)
                    .With("top_k", shape.TopK)
                    .With("dtype", dtype)
                    .With("gemm_path", r.GemmPath)
                    .With("iters", r.Repeats)
                    .With("ms", r.Step * 1e3)
                    .With("ms_min", r.StepMin * 1e3)
                    .With("forward_ms", r.Forward * 1e3)
                    .With("backward_ms", r.Backward * 1e3)
                    .With("optimizer_ms", r.Optimizer * 1e3)
                    .With("phases_ms", phases)
                    .With("products_ms", r.ProductSeconds * 1e3)
                    .With("products_tflops", productTflops)
                    .With("dense_gemm_ms", r.DenseProjectionSeconds * 1e3)
                    .With("dense_gemm_tflops", denseTflops)
                    .With("products_of_dense", productTflops / denseTflops)
                    .With("allocator_frees_per_step", r.FreesPerStep)
                    .With("device", r.Device)
                    .With("warmup", s.Warmup)
                    .With("seed", s.Seed)
            );
        }
        if (s.Json)
            return 0;
        AnsiConsole.MarkupLine(
            Markup.Escape(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"MoE layer step on {r.Device} ({r.Card}), preset {shape.Name}: T {shape.Tokens}, D {shape.Dim}, H {shape.Hidden}, E {shape.Experts}, K {shape.TopK}; "
                        + $"{(bf16 ? "bfloat16" : "float32")} products ({r.GemmPath}), float32 weights; median of {s.Repeats} after {s.Warmup} warm-up"
                )
            )
        );
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("stage");
        table.AddColumn(new TableColumn("ms").RightAligned());
        foreach (
            var (name, seconds) in new[]
            {
                ("forward", r.Forward),
                ("backward", r.Backward),
                ("optimizer (AdamW)", r.Optimizer),
                ("step", r.Step),
            }
        )
        {
            table.AddRow(name, (seconds * 1e3).ToString("F3", CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        if (r.FreesPerStep > 0)
        {
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    FormattableString.Invariant(
                        $"device buffers freed (and allocated again) per step: {r.FreesPerStep:F1} (the allocator's cache is full)"
                    )
                )
            );
        }
        var phaseTable = new Table().Border(TableBorder.Rounded);
        phaseTable.AddColumn("stage");
        phaseTable.AddColumn("phase");
        phaseTable.AddColumn(new TableColumn("ms (each kernel synchronized)").RightAligned());
        foreach (var (stage, phase, seconds) in r.Phases)
        {
            phaseTable.AddRow(
                stage,
                Markup.Escape(phase),
                (seconds * 1e3).ToString("F3", CultureInfo.InvariantCulture)
            );
        }
        AnsiConsole.Write(phaseTable);
        string reference = denseTflops is double dense
            ? FormattableString.Invariant(
                $"; dense bfloat16 cuBLAS GEMM of one projection's FLOPs ({shape.Rows} × {shape.Hidden} × {shape.Dim}): {dense:F1} TFLOP/s, products at {productTflops / dense:P0} of it"
            )
            : "; no dense cuBLAS reference off CUDA";
        AnsiConsole.MarkupLine(
            Markup.Escape(
                FormattableString.Invariant(
                    $"expert products: {r.ProductSeconds * 1e3:F3} ms for {shape.ProductFlops / 1e12:F2} TFLOP = {productTflops:F1} TFLOP/s"
                ) + reference
            )
        );
        return 0;
    }
}
