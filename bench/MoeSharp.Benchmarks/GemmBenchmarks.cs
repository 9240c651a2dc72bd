using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using MoeSharp.Compute;

namespace MoeSharp.Benchmarks;

/// <summary>
/// <see cref="HostGemm.MatMulTransposeB"/> (<c>C[M, N] = A[M, K] · B[N, K]ᵀ</c>, the linear layer) on all cores.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(FlopsConfig))]
public class GemmBenchmarks : IWorkPerOperation
{
    private float[] _a = null!,
        _b = null!,
        _c = null!;
    private int _m,
        _n,
        _k;

    /// <summary>M×N×K.</summary>
    [Params("1024x1024x1024", "4096x2048x512")]
    public string Shape { get; set; } = "1024x1024x1024";

    /// <summary>Random A and B.</summary>
    [GlobalSetup]
    public void Setup()
    {
        (_m, _n, _k) = Parse(Shape);
        var random = new Random(1);
        _a = new float[_m * _k];
        _b = new float[_n * _k];
        _c = new float[_m * _n];
        foreach (ref float v in _a.AsSpan())
            v = (float)(random.NextDouble() * 2 - 1);
        foreach (ref float v in _b.AsSpan())
            v = (float)(random.NextDouble() * 2 - 1);
    }

    /// <summary>One product.</summary>
    [Benchmark]
    public void MatMulTransposeB() => HostGemm.MatMulTransposeB(_a, _b, _c, _m, _n, _k);

    /// <summary>2·M·N·K (one multiply and one add per fused multiply-add).</summary>
    public double WorkPerOperation(BenchmarkCase benchmarkCase)
    {
        var (m, n, k) = Parse(benchmarkCase.Param<string>(nameof(Shape)));
        return 2.0 * m * n * k;
    }

    private static (int M, int N, int K) Parse(string shape)
    {
        int[] parts = shape.Split('x').Select(int.Parse).ToArray();
        return (parts[0], parts[1], parts[2]);
    }
}
