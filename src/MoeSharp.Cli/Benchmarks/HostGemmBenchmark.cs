using System.Diagnostics;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// <see cref="HostGemm"/>'s three products (<c>A·Bᵀ</c>, <c>A·B</c>, <c>Aᵀ·B</c>) on 1024³ and on the expert products
/// of the two layer shapes of issue 12, alone and as the layer runs them (all 16 experts in one grouped call), as
/// GFLOP/s next to the cores' FMA peak.
/// </summary>
internal static class HostGemmBenchmark
{
    /// <summary>
    /// One product shape: <c>C[M, N]</c> over a reduction of <c>K</c>; with <paramref name="Groups"/> &gt; 1 the M rows
    /// are that many equal experts' rows, each with its own B (the layer's grouped call).
    /// </summary>
    public sealed record Shape(string Name, int M, int N, int K, int Groups = 1);

    /// <summary>
    /// 1024³, and one expert's rows of T·K/E at the layer shapes (T 2048, D=H 512) and (T 8192, D=H 1024), E 16, K 2.
    /// </summary>
    public static IReadOnlyList<Shape> Shapes { get; } =
    [
        new("1024^3", 1024, 1024, 1024),
        new("expert T2048 D512 (256x512x512)", 256, 512, 512),
        new("expert T8192 D1024 (1024x1024x1024)", 1024, 1024, 1024),
        new("16 experts T2048 D512 (16 x 256x512x512)", 4096, 512, 512, 16),
        new("16 experts T8192 D1024 (16 x 1024x1024x1024)", 16384, 1024, 1024, 16),
    ];

    /// <summary>Median seconds of each product on one shape.</summary>
    /// <param name="Shape">The shape.</param>
    /// <param name="Product">Which product.</param>
    /// <param name="Seconds">Median wall-clock seconds.</param>
    /// <param name="CpuSeconds">Mean CPU seconds of the process per product (all threads): on a machine shared with
    /// other jobs it shows what the kernel costs when it does run.</param>
    /// <param name="AdjacentPeakGflops">The higher of the measured FMA peaks taken right before and right after this
    /// product's timed runs (NaN without a probe): on a machine whose clock drifts over seconds, the ceiling at the
    /// moment the product ran.</param>
    /// <param name="AdjacentKernelCeilingGflops">The higher of the micro-kernel's cache-resident rates
    /// (<see cref="KernelCeilingProbe"/>) taken right before and right after this product's timed runs (NaN without
    /// that probe): the ceiling for cache-bound work at the moment the product ran.</param>
    public sealed record Result(
        Shape Shape,
        string Product,
        double Seconds,
        double CpuSeconds,
        double AdjacentPeakGflops = double.NaN,
        double AdjacentKernelCeilingGflops = double.NaN
    )
    {
        /// <summary>2·M·N·K.</summary>
        public double Flops => 2.0 * Shape.M * Shape.N * Shape.K;

        /// <summary>FLOPs over the median time, in GFLOP/s.</summary>
        public double Gflops => Flops / Seconds / 1e9;

        /// <summary>FLOPs per CPU second, in GFLOP/s per core.</summary>
        public double GflopsPerCpu => Flops / CpuSeconds / 1e9;
    }

    /// <summary>
    /// Times each product of each shape (random inputs in tensor storage, on a 64-byte boundary as PyTorch's; median
    /// after warm-up), with <paramref name="probe"/> (a measured FMA peak in GFLOP/s) and <paramref name="ceiling"/>
    /// (the micro-kernel's cache-resident rate) each called right before and right after each product's runs when
    /// given.
    /// </summary>
    public static List<Result> Run(
        IReadOnlyList<Shape> shapes,
        int warmup,
        int repeats,
        Func<double>? probe = null,
        Func<double>? ceiling = null
    )
    {
        Result Time(Shape shape, string name, Action product)
        {
            double peakBefore = probe?.Invoke() ?? double.NaN;
            double ceilingBefore = ceiling?.Invoke() ?? double.NaN;
            Result r = TimeProduct(shape, name, warmup, repeats, product);
            double ceilingAfter = ceiling?.Invoke() ?? double.NaN;
            double peakAfter = probe?.Invoke() ?? double.NaN;
            return r with
            {
                AdjacentPeakGflops = Math.Max(peakBefore, peakAfter),
                AdjacentKernelCeilingGflops = Math.Max(ceilingBefore, ceilingAfter),
            };
        }

        var results = new List<Result>();
        var random = new Random(3);
        foreach (Shape s in shapes)
        {
            if (s.Groups > 1)
            {
                results.AddRange(Grouped(s, random, Time));
                continue;
            }
            Memory<float> a = Random(random, s.M * s.K),
                b = Random(random, s.N * s.K),
                c = Zeros(s.M * s.N);
            results.Add(
                Time(s, "A·Bᵀ (forward)", () => HostGemm.MatMulTransposeB(a.Span, b.Span, c.Span, s.M, s.N, s.K))
            );
            results.Add(Time(s, "A·B (input grad)", () => HostGemm.MatMul(a.Span, b.Span, c.Span, s.M, s.N, s.K)));
            // Aᵀ·B with A [K, M]: the weight gradient reduces over the K rows.
            results.Add(
                Time(s, "Aᵀ·B (weight grad)", () => HostGemm.MatMulTransposeA(a.Span, b.Span, c.Span, s.M, s.N, s.K))
            );
        }
        return results;
    }

    /// <summary>
    /// The layer's grouped products on equal groups: <c>x[g] · W[g]ᵀ</c>, <c>dy[g] · W[g]</c> and <c>dy[g]ᵀ · x[g]</c>
    /// into <c>dW[g]</c>, each 2·M·N·K FLOPs over all groups.
    /// </summary>
    private static IEnumerable<Result> Grouped(Shape s, Random random, Func<Shape, string, Action, Result> time)
    {
        long[] rows = Enumerable.Repeat((long)(s.M / s.Groups), s.Groups).ToArray();
        Memory<float> x = Random(random, s.M * s.K),
            w = Random(random, s.Groups * s.N * s.K),
            y = Zeros(s.M * s.N),
            dy = Random(random, s.M * s.N),
            dx = Zeros(s.M * s.K),
            dw = Zeros(s.Groups * s.N * s.K);
        yield return time(
            s,
            "A·Bᵀ (forward)",
            () => HostGemm.GroupedMatMulTransposeB(x.Span, w.Span, y.Span, rows, s.N, s.K)
        );
        yield return time(
            s,
            "A·B (input grad)",
            () => HostGemm.GroupedMatMul(dy.Span, w.Span, dx.Span, rows, s.K, s.N)
        );
        yield return time(
            s,
            "Aᵀ·B (weight grad)",
            () => HostGemm.GroupedMatMulTransposeA(dy.Span, x.Span, dw.Span, rows, s.N, s.K)
        );
    }

    /// <summary>
    /// Uniform values in [-1, 1), in a tensor's storage: on a 64-byte boundary, as the library's tensors and PyTorch's
    /// are (a managed array's first float lies wherever the GC put it, and the private grid reads a row-major B in
    /// place 6–14 % slower off the boundary on the GPU machine's Xeon: bench/RESULTS-cpu.md, stop 43).
    /// </summary>
    private static Memory<float> Random(Random random, int count)
    {
        Memory<float> values = Tensor.Uninitialized(DType.Float32, count).AsMemory<float>();
        Span<float> span = values.Span;
        for (int i = 0; i < count; i++)
            span[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

    private static Memory<float> Zeros(int count) => Tensor.Zeros(DType.Float32, count).AsMemory<float>();

    /// <summary>
    /// Runs <paramref name="product"/> <paramref name="warmup"/> times untimed, then <paramref name="repeats"/> times
    /// back to back, each timed on its own. The process's CPU time is read once around the timed runs: reading it
    /// between runs (a <c>/proc</c> read) left gaps in which the GEMM's helper threads could go back to sleep, so
    /// each timed product paid their wake-up, which neither a layer step (its kernels follow one another) nor the
    /// PyTorch peer (timed back to back) pays.
    /// </summary>
    private static Result TimeProduct(Shape shape, string name, int warmup, int repeats, Action product)
    {
        for (int i = 0; i < warmup; i++)
            product();
        var times = new List<double>(repeats);
        using var process = Process.GetCurrentProcess();
        TimeSpan cpuStart = process.TotalProcessorTime;
        for (int i = 0; i < repeats; i++)
        {
            long start = Stopwatch.GetTimestamp();
            product();
            times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        process.Refresh();
        TimeSpan cpu = process.TotalProcessorTime - cpuStart;
        return new Result(shape, name, DispatchBenchmark.Median(times), cpu.TotalSeconds / repeats);
    }
}
