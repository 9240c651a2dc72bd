using System.Diagnostics;
using MoeSharp.Cuda;
using MoeSharp.Cuda.Cublas;
using MoeSharp.Cuda.Memory;
using MoeSharp.Tensors;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// The experts' grouped GEMM through cuBLAS (bfloat16 in, float32 accumulate and out, one GEMM per expert) next to one
/// dense GEMM of the same FLOPs, on the shapes <c>bench/reference/gemm_reference.py</c> uses.
/// </summary>
internal static class GroupedGemmBenchmark
{
    /// <summary>
    /// A shape: <c>x [rows, k]</c> split into <paramref name="Groups"/> equal groups, each times <c>W_g [n, k]ᵀ</c>.
    /// </summary>
    public sealed record Shape(string Name, int Rows, int Groups, int N, int K);

    /// <summary>The reference's shapes: up and down projections of the two presets (E/4 local experts).</summary>
    public static IReadOnlyList<Shape> Shapes { get; } =
    [
        new("deepseek-up", 4096 * 8, 256 / 4, 2 * 2048, 7168),
        new("deepseek-down", 4096 * 8, 256 / 4, 7168, 2048),
        new("qwen3-up", 8192 * 8, 128 / 4, 2 * 768, 2048),
        new("qwen3-down", 8192 * 8, 128 / 4, 2048, 768),
    ];

    /// <summary>Median seconds of the grouped and the dense GEMM.</summary>
    public sealed record Result(Shape Shape, double GroupedSeconds, double DenseSeconds)
    {
        /// <summary>2·rows·n·k.</summary>
        public double Flops => 2.0 * Shape.Rows * Shape.N * Shape.K;
    }

    /// <summary>Times every shape on <paramref name="backend"/>'s CUDA device.</summary>
    public static List<Result> Run(IlgpuBackend backend, int warmup, int repeats)
    {
        int device = backend.Accelerator is ILGPU.Runtime.Cuda.CudaAccelerator cuda ? cuda.DeviceId : 0;
        // ILGPU works in a context of its own on the legacy stream: cuBLAS must use both.
        using var gemm = new CublasGroupedGemm(
            device,
            stream: 0,
            useGroupedBatched: false,
            bindContext: () => backend.Accelerator.Bind()
        );
        var results = new List<Result>();
        var random = new Random(7);
        foreach (Shape shape in Shapes)
        {
            Tensor x = RandomBFloat16(backend, random, shape.Rows, shape.K);
            Tensor w = RandomBFloat16(backend, random, shape.Groups, shape.N, shape.K);
            Tensor dense = RandomBFloat16(backend, random, 1, shape.N, shape.K);
            Tensor output = backend.Allocator.Rent(DType.Float32, shape.Rows, shape.N);
            int[] perExpert = Enumerable
                .Range(0, shape.Groups)
                .Select(g => (int)((long)shape.Rows * (g + 1) / shape.Groups - (long)shape.Rows * g / shape.Groups))
                .ToArray();
            double grouped = Time(backend, warmup, repeats, () => gemm.Run(x, w, output, perExpert));
            double one = Time(backend, warmup, repeats, () => gemm.Run(x, dense, output, [shape.Rows]));
            results.Add(new Result(shape, grouped, one));
            foreach (Tensor t in new[] { x, w, dense, output })
                backend.Allocator.Return(t);
        }
        return results;
    }

    private static double Time(IlgpuBackend backend, int warmup, int repeats, Action gemm)
    {
        var times = new List<double>();
        for (int i = 0; i < warmup + repeats; i++)
        {
            backend.Kernels.Device.Synchronize();
            long start = Stopwatch.GetTimestamp();
            gemm();
            backend.Kernels.Device.Synchronize();
            if (i >= warmup)
                times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return DispatchBenchmark.Median(times);
    }

    /// <summary>
    /// A device tensor of random bfloat16 values, uploaded in 64 MiB pieces of one random block: the expert weights
    /// (up to 3.7 GB) are larger than a host span can describe. Random data, never zeros: matrix units run measurably
    /// faster on zeros.
    /// </summary>
    private static Tensor RandomBFloat16(IlgpuBackend backend, Random random, params int[] shape)
    {
        Tensor t = backend.Allocator.Rent(DType.BFloat16, shape);
        var block = Tensor.Uninitialized(DType.BFloat16, 32 << 20);
        foreach (ref BFloat16 v in block.AsSpan<BFloat16>())
            v = BFloat16.FromSingle((float)(random.NextDouble() * 2 - 1));
        ReadOnlySpan<byte> bytes = block.AsBytes();
        long total = (long)t.ElementCount * 2;
        for (long offset = 0; offset < total; offset += bytes.Length)
        {
            t.DeviceBuffer!.CopyFromHost(bytes.Slice(0, (int)Math.Min(bytes.Length, total - offset)), offset);
        }
        return t;
    }
}
