using MoeSharp.Cli.Benchmarks;

namespace MoeSharp.Tests.Cli;

/// <summary><c>moe bench-cpu</c>'s cache-resident micro-kernel probe on the host kernels' worker team.</summary>
public sealed class KernelCeilingProbeTests
{
    [Fact]
    public void Measure_OnOneThreadThenMore_RatesEveryThreadsKernelRuns()
    {
        // One thread, then three (the caller and two helpers, each task waiting until all have warmed their block: this
        // would hang if the team ran two tasks on one thread), so the kept blocks grow between calls.
        foreach (int threads in new[] { 1, 3 })
        {
            double gflops = KernelCeilingProbe.Measure(threads, rounds: 1);
            Assert.True(gflops > 0 && double.IsFinite(gflops), $"{threads} threads: {gflops}");
        }
    }
}
