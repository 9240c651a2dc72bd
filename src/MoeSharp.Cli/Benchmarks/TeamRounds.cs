using System.Diagnostics;
using MoeSharp.Compute;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// Timed rounds in which <c>N</c> threads of the host kernels' worker team (the threads that run the GEMM, see
/// <c>HostWorkerTeam</c>) each run one task at the same time: the probes' way of measuring what those threads deliver
/// together.
/// </summary>
internal static class TeamRounds
{
    /// <summary>
    /// The shortest of <paramref name="rounds"/> rounds, in seconds. In each round every one of
    /// <paramref name="threads"/> tasks runs <paramref name="prepare"/>, waits until all have (so no thread runs two
    /// tasks one after the other, and all timed parts run at once), then runs <paramref name="timed"/>; a round lasts
    /// from the first task's timed start to the last one's end, each task stamping its own (the caller is one of the
    /// threads, so no clock outside them would see the round's true start).
    /// </summary>
    public static double ShortestSeconds(int threads, int rounds, Action<int> prepare, Action<int> timed)
    {
        var begins = new long[threads];
        var ends = new long[threads];
        double shortest = double.PositiveInfinity;
        for (int r = 0; r < rounds; r++)
        {
            int ready = 0;
            HostWorkerTeam.For(
                threads,
                threads,
                task =>
                {
                    prepare(task);
                    Interlocked.Increment(ref ready);
                    var spin = new SpinWait();
                    while (Volatile.Read(ref ready) < threads)
                        spin.SpinOnce(sleep1Threshold: -1);
                    begins[task] = Stopwatch.GetTimestamp();
                    timed(task);
                    ends[task] = Stopwatch.GetTimestamp();
                }
            );
            shortest = Math.Min(shortest, (double)(ends.Max() - begins.Min()) / Stopwatch.Frequency);
        }
        return shortest;
    }
}
