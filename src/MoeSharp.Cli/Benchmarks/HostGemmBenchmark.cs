using System.Diagnostics;
using MoeSharp.Compute;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// <see cref="HostGemm"/>'s three products (<c>A·Bᵀ</c>, <c>A·B</c>, <c>Aᵀ·B</c>) on 1024³ and on the expert products
/// of the two layer shapes of issue 12, as GFLOP/s next to the cores' FMA peak.
/// </summary>
internal static class HostGemmBenchmark
{
    /// <summary>One product shape: <c>C[M, N]</c> over a reduction of <c>K</c>.</summary>
    public sealed record Shape(string Name, int M, int N, int K);

    /// <summary>
    /// 1024³, and one expert's rows of T·K/E at the layer shapes (T 2048, D=H 512) and (T 8192, D=H 1024), E 16, K 2.
    /// </summary>
    public static IReadOnlyList<Shape> Shapes { get; } =
    [
        new("1024^3", 1024, 1024, 1024),
        new("expert T2048 D512 (256x512x512)", 256, 512, 512),
        new("expert T8192 D1024 (1024x1024x1024)", 1024, 1024, 1024),
    ];

    /// <summary>Median seconds of each product on one shape.</summary>
    /// <param name="Shape">The shape.</param>
    /// <param name="Product">Which product.</param>
    /// <param name="Seconds">Median wall-clock seconds.</param>
    /// <param name="CpuSeconds">Mean CPU seconds of the process per product (all threads): on a machine shared with
    /// other jobs it shows what the kernel costs when it does run.</param>
    public sealed record Result(Shape Shape, string Product, double Seconds, double CpuSeconds)
    {
        /// <summary>2·M·N·K.</summary>
        public double Flops => 2.0 * Shape.M * Shape.N * Shape.K;

        /// <summary>FLOPs over the median time, in GFLOP/s.</summary>
        public double Gflops => Flops / Seconds / 1e9;

        /// <summary>FLOPs per CPU second, in GFLOP/s per core.</summary>
        public double GflopsPerCpu => Flops / CpuSeconds / 1e9;
    }

    /// <summary>Times each product of each shape (random inputs, median after warm-up).</summary>
    public static List<Result> Run(IReadOnlyList<Shape> shapes, int warmup, int repeats)
    {
        var results = new List<Result>();
        var random = new Random(3);
        foreach (Shape s in shapes)
        {
            float[] a = Random(random, s.M * s.K),
                b = Random(random, s.N * s.K),
                c = new float[s.M * s.N];
            results.Add(
                Time(s, "A·Bᵀ (forward)", warmup, repeats, () => HostGemm.MatMulTransposeB(a, b, c, s.M, s.N, s.K))
            );
            results.Add(Time(s, "A·B (input grad)", warmup, repeats, () => HostGemm.MatMul(a, b, c, s.M, s.N, s.K)));
            // Aᵀ·B with A [K, M]: the weight gradient reduces over the K rows.
            results.Add(
                Time(s, "Aᵀ·B (weight grad)", warmup, repeats, () => HostGemm.MatMulTransposeA(a, b, c, s.M, s.N, s.K))
            );
        }
        return results;
    }

    private static float[] Random(Random random, int count)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

    private static Result Time(Shape shape, string name, int warmup, int repeats, Action product)
    {
        var times = new List<double>();
        using var process = Process.GetCurrentProcess();
        TimeSpan cpu = TimeSpan.Zero;
        for (int i = 0; i < warmup + repeats; i++)
        {
            process.Refresh();
            TimeSpan cpuStart = process.TotalProcessorTime;
            long start = Stopwatch.GetTimestamp();
            product();
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            process.Refresh();
            if (i < warmup)
                continue;
            times.Add(seconds);
            cpu += process.TotalProcessorTime - cpuStart;
        }
        return new Result(shape, name, DispatchBenchmark.Median(times), cpu.TotalSeconds / repeats);
    }
}
