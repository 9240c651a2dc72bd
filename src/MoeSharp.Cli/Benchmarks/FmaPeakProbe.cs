using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// The cores' measured float32 FMA throughput: <c>N</c> threads of this process (under whatever affinity the process
/// runs with, as the GEMM's threads do), each running <see cref="Chains"/> independent fused multiply-add chains held
/// in vector registers, with no memory operand in the loop. It is the ceiling the GEMM's FMA chains can reach on these
/// threads at the clock they actually run at, which the nominal formula (cores × GHz × units × lanes × 2) cannot know:
/// turbo above the nominal clock, a lower clock under 512-bit load on every core, or virtual CPUs that are hyperthreads
/// sharing one core's FMA units.
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
    /// clock they hold under this load) of <paramref name="threads"/> threads started together, each running
    /// <see cref="Chains"/> chains of <paramref name="bits"/>-bit FMAs; a round lasts from the first thread's start to
    /// the last one's end. Null
    /// when this machine has no hardware vectors of that width.
    /// </summary>
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
        // The workers stamp their own start and end: the thread that releases them may itself wait for a core (it is
        // one more thread on the same cores), so its clock would miss the start of the round.
        var begins = new long[rounds + 1, threads];
        var ends = new long[rounds + 1, threads];
        using var start = new Barrier(threads + 1);
        using var done = new Barrier(threads + 1);
        float sink = 0;
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            workers[t] = new Thread(() =>
            {
                float local = 0;
                for (int r = 0; r <= rounds; r++)
                {
                    start.SignalAndWait();
                    begins[r, id] = Stopwatch.GetTimestamp();
                    local += chains(Blocks);
                    ends[r, id] = Stopwatch.GetTimestamp();
                    done.SignalAndWait();
                }
                // Keeps the chains' results observable so that no compiler may drop them.
                Interlocked.Exchange(ref sink, local);
            })
            {
                IsBackground = true,
                Name = "fma-probe",
            };
            workers[t].Start();
        }
        double best = 0;
        for (int r = 0; r <= rounds; r++)
        {
            start.SignalAndWait();
            done.SignalAndWait();
            if (r == 0)
                continue;
            long first = long.MaxValue,
                last = long.MinValue;
            for (int t = 0; t < threads; t++)
            {
                first = Math.Min(first, begins[r, t]);
                last = Math.Max(last, ends[r, t]);
            }
            double seconds = (double)(last - first) / Stopwatch.Frequency;
            best = Math.Max(best, threads * flopsPerThread / seconds / 1e9);
        }
        foreach (Thread w in workers)
            w.Join();
        GC.KeepAlive(sink);
        return new Result(bits, threads, best);
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
