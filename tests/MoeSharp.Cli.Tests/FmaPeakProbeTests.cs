using System.Runtime.Intrinsics;
using MoeSharp.Cli.Benchmarks;

namespace MoeSharp.Tests.Cli;

/// <summary><c>moe bench-cpu</c>'s FMA probe on the host kernels' worker team.</summary>
public sealed class FmaPeakProbeTests
{
    [Fact]
    public void Measure_OnSeveralTeamThreads_ReturnsEachWidthTheMachineHas()
    {
        // Three threads: the caller and two helpers of the worker team, each task waiting until all have started, so
        // this would hang if the team ran two tasks on one thread.
        foreach (int bits in new[] { 512, 256 })
        {
            FmaPeakProbe.Result? result = FmaPeakProbe.Measure(bits, threads: 3, rounds: 1);
            bool present = bits == 512 ? Vector512.IsHardwareAccelerated : Vector256.IsHardwareAccelerated;
            if (!present)
            {
                Assert.Null(result);
                continue;
            }
            Assert.NotNull(result);
            Assert.Equal(bits, result.Bits);
            Assert.Equal(3, result.Threads);
            Assert.True(result.Gflops > 0 && double.IsFinite(result.Gflops), $"{result.Gflops}");
        }
    }
}
