using System.Diagnostics;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// The machine's memory-copy bandwidth, measured like the dispatcher: a buffer copied in parallel chunks on
/// all cores, median of repeated runs after warm-up, bytes read plus bytes written over the time.
/// </summary>
internal static class CopyBandwidth
{
    /// <summary>Bytes per second copying <paramref name="bytes"/> bytes.</summary>
    public static double Measure(long bytes, int warmup, int repeats)
    {
        int floats = (int)Math.Min(bytes / sizeof(float), Array.MaxLength);
        float[] source = GC.AllocateUninitializedArray<float>(floats, pinned: true);
        float[] destination = GC.AllocateUninitializedArray<float>(floats, pinned: true);
        new Random(1).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(source.AsSpan()));
        var times = new List<double>();
        int threads = MoeSharp.Compute.HostThreads.Count;
        int chunks = threads * 4;
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        for (int i = 0; i < warmup + repeats; i++)
        {
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
