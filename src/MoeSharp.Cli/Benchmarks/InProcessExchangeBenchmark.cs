using System.Diagnostics;
using MoeSharp.Collectives;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// The in-process all-to-all-v alone: every rank of a world sends the same number of bytes in equal shares to every
/// rank (itself included), next to a parallel copy of the world's bytes on the same threads.
/// </summary>
internal static class InProcessExchangeBenchmark
{
    /// <summary>Median seconds of one exchange (the slowest rank's) and of the copy.</summary>
    /// <param name="World">Ranks.</param>
    /// <param name="BytesPerRank">Bytes each rank sends (and receives).</param>
    /// <param name="ExchangeSeconds">One exchange, barrier to the last rank's return.</param>
    /// <param name="CopySeconds">One copy of <c>World · BytesPerRank</c> bytes.</param>
    public sealed record Result(int World, long BytesPerRank, double ExchangeSeconds, double CopySeconds)
    {
        /// <summary>Bytes read plus written over the world per exchange (as the copy counts them).</summary>
        public double Bytes => 2.0 * World * BytesPerRank;
    }

    /// <summary>Runs the exchange on a fresh world of <paramref name="world"/> ranks.</summary>
    public static Result Run(int world, long bytesPerRank, int warmup, int repeats)
    {
        int perPeer = checked((int)(bytesPerRank / sizeof(float) / world));
        int[] counts = Enumerable.Repeat(perPeer, world).ToArray();
        var times = InProcessWorld.Run(
            world,
            group =>
            {
                var send = GC.AllocateUninitializedArray<float>(perPeer * world, pinned: true);
                var receive = GC.AllocateUninitializedArray<float>(perPeer * world, pinned: true);
                new Random(group.Rank).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(send.AsSpan()));
                receive.AsSpan().Clear();
                var seconds = new List<double>();
                var all = new double[group.Size];
                for (int i = 0; i < warmup + repeats; i++)
                {
                    group.Barrier();
                    long start = Stopwatch.GetTimestamp();
                    group.AllToAllV<float>(send, counts, receive, counts);
                    double mine = Stopwatch.GetElapsedTime(start).TotalSeconds;
                    // The exchange is done when its slowest rank is.
                    group.AllGather<double>([mine], all);
                    if (i >= warmup)
                        seconds.Add(all.Max());
                }
                return DispatchBenchmark.Median(seconds);
            }
        );
        long worldBytes = (long)perPeer * world * world * sizeof(float);
        double copy = 2.0 * worldBytes / CopyBandwidth.Measure(worldBytes, warmup, repeats);
        return new Result(world, (long)perPeer * world * sizeof(float), times[0], copy);
    }
}
