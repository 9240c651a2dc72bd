using System.Diagnostics;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// The machine's memory-copy bandwidth, measured like the dispatcher: a buffer copied in parallel chunks on
/// all cores, median of repeated runs after warm-up, bytes read plus bytes written over the time.
/// </summary>
internal static class CopyBandwidth
{
    /// <summary>Bytes per second copying <paramref name="bytes"/> bytes.</summary>
    public static double Measure(long bytes, int warmup, int repeats) => Measure(bytes, warmup, repeats, null);

    /// <summary>
    /// Bytes per second of this rank copying <paramref name="bytes"/> bytes while every rank of
    /// <paramref name="world"/> copies its own at the same time (a barrier before each run), each on its share of the
    /// threads: the reference for one rank's dispatch on cores the ranks share. On a world of one rank, the same as
    /// <see cref="Measure(long, int, int)"/>.
    /// </summary>
    public static double MeasureTogether(
        MoeSharp.Collectives.IProcessGroup world,
        long bytes,
        int warmup,
        int repeats
    ) => Measure(bytes, warmup, repeats, world);

    private static double Measure(long bytes, int warmup, int repeats, MoeSharp.Collectives.IProcessGroup? world)
    {
        int floats = (int)Math.Min(bytes / sizeof(float), Array.MaxLength);
        float[] source = GC.AllocateUninitializedArray<float>(floats, pinned: true);
        float[] destination = GC.AllocateUninitializedArray<float>(floats, pinned: true);
        new Random(1).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(source.AsSpan()));
        var times = new List<double>();
        int threads = world is null ? MoeSharp.Compute.HostThreads.Count : MoeSharp.Compute.HostThreads.Current;
        int chunks = threads * 4;
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        for (int i = 0; i < warmup + repeats; i++)
        {
            world?.Barrier();
            long start = Stopwatch.GetTimestamp();
            Parallel.For(
                0,
                chunks,
                options,
                c =>
                {
                    int begin = (int)((long)floats * c / chunks),
                        end = (int)((long)floats * (c + 1) / chunks);
                    source.AsSpan(begin, end - begin).CopyTo(destination.AsSpan(begin, end - begin));
                }
            );
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (i >= warmup)
                times.Add(seconds);
        }
        return 2.0 * floats * sizeof(float) / DispatchBenchmark.Median(times);
    }
}
