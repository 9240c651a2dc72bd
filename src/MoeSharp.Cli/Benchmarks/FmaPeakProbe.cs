using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// The cores' measured float32 FMA throughput: <c>N</c> threads of the host kernels' worker team (the GEMM's own
/// threads, under whatever affinity the process runs with), each running <see cref="Chains"/> independent fused
/// multiply-add chains held in vector registers, with no memory operand in the loop. It is the ceiling the GEMM's FMA
/// chains can reach on these threads at the clock they actually run at, which the nominal formula (cores × GHz × units
/// × lanes × 2) cannot know: turbo above the nominal clock, a lower clock under 512-bit load on every core, or virtual
/// CPUs that are hyperthreads sharing one core's FMA units.
/// </summary>
internal static class FmaPeakProbe
{
    /// <summary>
    /// Independent chains per thread: an FMA has a latency of 4 cycles on current x86 cores and two issue each cycle,
    /// so 8 chains in flight keep both units busy; 12 leave headroom for a latency of 6, and with the two constant
    /// operands still fit the 16 vector registers of an AVX2-only core without spills.
    /// </summary>
    public const int Chains = 12;

    /// <summary>Blocks of <see cref="Chains"/> FMAs each thread runs in one timed round (about 10 ms at 2 per cycle
    /// and 2.5 GHz).</summary>
    private const int Blocks = 1 << 22;

    /// <summary>The measured throughput of one vector width on some threads.</summary>
    /// <param name="Bits">Vector width: 512 or 256.</param>
    /// <param name="Threads">Threads that ran the chains at once.</param>
    /// <param name="Gflops">Float32 GFLOP/s of all threads together (an FMA is 2 FLOPs per lane), the best
    /// round.</param>
    public sealed record Result(int Bits, int Threads, double Gflops);

    /// <summary>
    /// The best of <paramref name="rounds"/> timed rounds (after one untimed round that also brings the cores to the
    /// clock they hold under this load) of <paramref name="threads"/> threads of the host kernels' worker team (the
    /// threads that run the GEMM, see <c>HostWorkerTeam</c>), each running <see cref="Chains"/> chains of
    /// <paramref name="bits"/>-bit FMAs once all of them have started; a round lasts from the first thread's start to
    /// the last one's end. Null when this machine has no hardware vectors of that width.
    /// </summary>
    /// <remarks>
    /// Why the team's threads rather than threads of its own: on the GPU machine's 16-vCPU Xeon, a probe of 16 threads
    /// started and joined for it slowed the product timed right after it (one 256 × 512 × 512 A·B read 507 and 598
    /// GFLOP/s behind it in two of three rounds, 971–981 with no probe, 1010–1079 behind a probe on the team;
    /// bench/RESULTS-cpu.md, stop 29), though 20 warm-up calls ran in between. Twenty milliseconds of sleep after the
    /// probe also cured it, so it is a transient cost of the probe's own threads coming and going, not of the FMA load;
    /// on the team no thread comes or goes.
    /// </remarks>
    public static Result? Measure(int bits, int threads, int rounds)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        Func<int, float> chains;
        if (bits == 512 && Vector512.IsHardwareAccelerated)
            chains = Chains512;
        else if (bits == 256 && Vector256.IsHardwareAccelerated)
            chains = Chains256;
        else
            return null;
        int lanes = bits / 32;
        double flopsPerThread = (double)Blocks * Chains * lanes * 2;
        float sink = 0;
        // Keeps the chains' results observable so that no compiler may drop them.
        void Run(int task) => Interlocked.Exchange(ref sink, chains(Blocks));
        // One untimed round first, which also brings the cores to the clock they hold under this load.
        TeamRounds.ShortestSeconds(threads, 1, static _ => { }, Run);
        double seconds = TeamRounds.ShortestSeconds(threads, rounds, static _ => { }, Run);
        GC.KeepAlive(sink);
        return new Result(bits, threads, threads * flopsPerThread / seconds / 1e9);
    }

    /// <summary><see cref="Chains"/> chains <c>c = c·x + y</c> of 512-bit vectors, <paramref name="blocks"/> steps
    /// each. x just below 1 and y small keep every value normal and finite.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains512(int blocks)
    {
        Vector512<float> x = Vector512.Create(0.999999f),
            y = Vector512.Create(1e-6f);
        Vector512<float> c0 = Vector512.Create(0.0f),
            c1 = Vector512.Create(0.1f),
            c2 = Vector512.Create(0.2f),
            c3 = Vector512.Create(0.3f);
        Vector512<float> c4 = Vector512.Create(0.4f),
            c5 = Vector512.Create(0.5f),
            c6 = Vector512.Create(0.6f),
            c7 = Vector512.Create(0.7f);
        Vector512<float> c8 = Vector512.Create(0.8f),
            c9 = Vector512.Create(0.9f),
            c10 = Vector512.Create(1.0f),
            c11 = Vector512.Create(1.1f);
        for (int i = 0; i < blocks; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, x, y);
            c1 = Vector512.FusedMultiplyAdd(c1, x, y);
            c2 = Vector512.FusedMultiplyAdd(c2, x, y);
            c3 = Vector512.FusedMultiplyAdd(c3, x, y);
            c4 = Vector512.FusedMultiplyAdd(c4, x, y);
            c5 = Vector512.FusedMultiplyAdd(c5, x, y);
            c6 = Vector512.FusedMultiplyAdd(c6, x, y);
            c7 = Vector512.FusedMultiplyAdd(c7, x, y);
            c8 = Vector512.FusedMultiplyAdd(c8, x, y);
            c9 = Vector512.FusedMultiplyAdd(c9, x, y);
            c10 = Vector512.FusedMultiplyAdd(c10, x, y);
            c11 = Vector512.FusedMultiplyAdd(c11, x, y);
        }
        Vector512<float> sum = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
        return Vector512.Sum(sum);
    }

    /// <summary><see cref="Chains512"/> with 256-bit vectors (the GEMM's kernel where AVX-512 is absent).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains256(int blocks)
    {
        Vector256<float> x = Vector256.Create(0.999999f),
            y = Vector256.Create(1e-6f);
        Vector256<float> c0 = Vector256.Create(0.0f),
            c1 = Vector256.Create(0.1f),
            c2 = Vector256.Create(0.2f),
            c3 = Vector256.Create(0.3f);
        Vector256<float> c4 = Vector256.Create(0.4f),
            c5 = Vector256.Create(0.5f),
            c6 = Vector256.Create(0.6f),
            c7 = Vector256.Create(0.7f);
        Vector256<float> c8 = Vector256.Create(0.8f),
            c9 = Vector256.Create(0.9f),
            c10 = Vector256.Create(1.0f),
            c11 = Vector256.Create(1.1f);
        for (int i = 0; i < blocks; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, x, y);
            c1 = Vector256.FusedMultiplyAdd(c1, x, y);
            c2 = Vector256.FusedMultiplyAdd(c2, x, y);
            c3 = Vector256.FusedMultiplyAdd(c3, x, y);
            c4 = Vector256.FusedMultiplyAdd(c4, x, y);
            c5 = Vector256.FusedMultiplyAdd(c5, x, y);
            c6 = Vector256.FusedMultiplyAdd(c6, x, y);
            c7 = Vector256.FusedMultiplyAdd(c7, x, y);
            c8 = Vector256.FusedMultiplyAdd(c8, x, y);
            c9 = Vector256.FusedMultiplyAdd(c9, x, y);
            c10 = Vector256.FusedMultiplyAdd(c10, x, y);
            c11 = Vector256.FusedMultiplyAdd(c11, x, y);
        }
        Vector256<float> sum = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
        return Vector256.Sum(sum);
    }
}
