using System.Globalization;
using System.Text.Json;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Cuda;
using Spectre.Console;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe bench --layer</c>: the MoE layer step (<see cref="LayerBenchmark"/>) on the host, ILGPU's CPU accelerator or a
/// GPU, as a table or, with <c>--json</c>, one line in the schema of <c>bench/reference/torchtitan_moe_layer.py</c>
/// (<c>moesharp-bench/1</c>, kind <c>layer</c>).
/// </summary>
internal static class LayerBenchReport
{
    /// <summary>The presets: Qwen3-30B-A3B-like and a small one (the GPU issue's shapes).</summary>
    public static LayerBenchmark.Shape Resolve(BenchSettings s) => s.Preset switch
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
        try
        {
            shape = Resolve(s);
            compute = ComputeOptions.Parse(s.Device, s.Gpus);
            _ = BFloat16Products(s, compute);
        }
        catch (ArgumentException ex)
        {
            return ex.Message;
        }
        if (s.World != 1 || s.Comm is not (null or "inproc") || s.Gpus is > 1) return "--layer runs one rank: leave --world, --comm and --gpus at 1";
        if (s.Gemm || s.Profile) return "--layer times every phase itself: it takes neither --gemm nor --profile";
        if (shape.Tokens < 1 || shape.Dim < 1 || shape.Hidden < 1 || shape.Experts < 1 || shape.TopK < 1)
            return $"--tokens {shape.Tokens}, --dim {shape.Dim}, --hidden {shape.Hidden}, --experts {shape.Experts} and --top-k {shape.TopK} must be positive";
        if (shape.TopK > shape.Experts) return $"--top-k {shape.TopK} must not exceed --experts {shape.Experts}";
        if (shape.Rows * Math.Max(shape.Dim, shape.Hidden) > int.MaxValue || (long)shape.Experts * shape.Dim * shape.Hidden > int.MaxValue)
            return $"--tokens {shape.Tokens} × --top-k {shape.TopK} rows of {Math.Max(shape.Dim, shape.Hidden)} or the expert weights exceed 2^31 elements";
        if (s.Warmup < 0) return $"--warmup {s.Warmup} must not be negative";
        if (s.Repeats < 1) return $"--repeats {s.Repeats} must be at least 1";
        return null;
    }

    /// <summary>bfloat16 product inputs: the default on a device, refused on the host (its products are float32).</summary>
    private static bool BFloat16Products(BenchSettings s, ComputeOptions compute)
    {
        bool bf16 = (BenchShape.ParseRowType(s.DType) ?? (compute.OnDevice ? Tensors.DType.BFloat16 : Tensors.DType.Float32)) == Tensors.DType.BFloat16;
        if (bf16 && !compute.OnDevice) throw new ArgumentException($"--dtype {s.DType}: bfloat16 products need --device cuda or ilgpu-cpu");
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
        if (s.Json)
        {
            var phases = new Dictionary<string, double>();
            foreach (var (stage, phase, seconds) in r.Phases) phases[$"{stage} {phase}"] = seconds * 1e3;
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["schema"] = "moesharp-bench/1", ["kind"] = "layer", ["impl"] = "moesharp-" + r.Device, ["card"] = r.Card, ["gpus"] = 1,
                ["preset"] = shape.Name, ["tokens"] = shape.Tokens, ["dim"] = shape.Dim, ["hidden"] = shape.Hidden, ["experts"] = shape.Experts,
                ["top_k"] = shape.TopK, ["dtype"] = dtype, ["gemm_path"] = r.GemmPath, ["iters"] = r.Repeats,
                ["ms"] = r.Step * 1e3, ["ms_min"] = r.StepMin * 1e3, ["forward_ms"] = r.Forward * 1e3, ["backward_ms"] = r.Backward * 1e3,
                ["optimizer_ms"] = r.Optimizer * 1e3, ["phases_ms"] = phases, ["products_ms"] = r.ProductSeconds * 1e3,
                ["products_tflops"] = productTflops, ["dense_gemm_ms"] = r.DenseProjectionSeconds * 1e3, ["dense_gemm_tflops"] = denseTflops,
                ["products_of_dense"] = productTflops / denseTflops, ["allocator_frees_per_step"] = r.FreesPerStep,
            }));
            return 0;
        }
        AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"MoE layer step on {r.Device} ({r.Card}), preset {shape.Name}: T {shape.Tokens}, D {shape.Dim}, H {shape.Hidden}, E {shape.Experts}, K {shape.TopK}; " +
            $"{(bf16 ? "bfloat16" : "float32")} products ({r.GemmPath}), float32 weights; median of {s.Repeats} after {s.Warmup} warm-up")));
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("stage");
        table.AddColumn(new TableColumn("ms").RightAligned());
        foreach (var (name, seconds) in new[] { ("forward", r.Forward), ("backward", r.Backward), ("optimizer (AdamW)", r.Optimizer), ("step", r.Step) })
        {
            table.AddRow(name, (seconds * 1e3).ToString("F3", CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        if (r.FreesPerStep > 0)
        {
            AnsiConsole.MarkupLine(Markup.Escape(FormattableString.Invariant($"device buffers freed (and allocated again) per step: {r.FreesPerStep:F1} (the allocator's cache is full)")));
        }
        var phaseTable = new Table().Border(TableBorder.Rounded);
        phaseTable.AddColumn("stage");
        phaseTable.AddColumn("phase");
        phaseTable.AddColumn(new TableColumn("ms (each kernel synchronized)").RightAligned());
        foreach (var (stage, phase, seconds) in r.Phases)
        {
            phaseTable.AddRow(stage, Markup.Escape(phase), (seconds * 1e3).ToString("F3", CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(phaseTable);
        string reference = denseTflops is double dense
            ? FormattableString.Invariant($"; dense bfloat16 cuBLAS GEMM of one projection's FLOPs ({shape.Rows} × {shape.Hidden} × {shape.Dim}): {dense:F1} TFLOP/s, products at {productTflops / dense:P0} of it")
            : "; no dense cuBLAS reference off CUDA";
        AnsiConsole.MarkupLine(Markup.Escape(FormattableString.Invariant(
            $"expert products: {r.ProductSeconds * 1e3:F3} ms for {shape.ProductFlops / 1e12:F2} TFLOP = {productTflops:F1} TFLOP/s") + reference));
        return 0;
    }
}
