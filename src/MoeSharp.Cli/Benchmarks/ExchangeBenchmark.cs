using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Mpi;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// The all-to-all-v of rows alone, at a dispatch's message sizes: through <see cref="IProcessGroup.AllToAllV{T}"/>
/// and, on an MPI job, through raw <c>MPI_Alltoallv</c> with the same byte counts.
/// </summary>
internal static class ExchangeBenchmark
{
    /// <summary>Median times on this rank.</summary>
    /// <param name="BytesSent">Bytes this rank sends per exchange.</param>
    /// <param name="WrapperSeconds">Through the process group.</param>
    /// <param name="RawSeconds">Through raw MPI_Alltoallv, or null off MPI.</param>
    public sealed record Result(long BytesSent, double WrapperSeconds, double? RawSeconds);

    /// <summary>
    /// Collective: times both forms, alternating them (and which goes first) so drift affects both alike.
    /// </summary>
    /// <typeparam name="T">The row element type (float, or BFloat16 for bfloat16 rows).</typeparam>
    public static Result RunRank<T>(
        IProcessGroup world,
        int[] sendRows,
        int[] receiveRows,
        int dim,
        int warmup,
        int repeats
    )
        where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        int[] sendCounts = sendRows.Select(r => r * dim).ToArray();
        int[] receiveCounts = receiveRows.Select(r => r * dim).ToArray();
        var send = new T[sendCounts.Sum()];
        var receive = new T[receiveCounts.Sum()];
        new Random(world.Rank).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(send.AsSpan()));

        var mpi = world as MpiProcessGroup;
        int[] sendBytes = sendCounts.Select(c => c * size).ToArray();
        int[] receiveBytes = receiveCounts.Select(c => c * size).ToArray();
        int[] sendDispls = Displacements(sendBytes),
            receiveDispls = Displacements(receiveBytes);

        var wrapper = new List<double>();
        var raw = new List<double>();
        for (int i = 0; i < warmup + repeats; i++)
        {
            // Alternate which form goes first, so neither always follows the other's memory traffic.
            bool rawFirst = mpi is not null && i % 2 == 1;
            if (rawFirst)
                TimeRaw();
            world.Barrier();
            long start = Stopwatch.GetTimestamp();
            world.AllToAllV<T>(send, sendCounts, receive, receiveCounts);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (i >= warmup)
                wrapper.Add(seconds);
            if (mpi is not null && !rawFirst)
                TimeRaw();

            void TimeRaw()
            {
                world.Barrier();
                long rawStart = Stopwatch.GetTimestamp();
                // The same memory as the wrapper's call: only the code in between differs.
                mpi!.RawAllToAllVBytes(
                    System.Runtime.InteropServices.MemoryMarshal.AsBytes(send.AsSpan()),
                    sendBytes,
                    sendDispls,
                    System.Runtime.InteropServices.MemoryMarshal.AsBytes(receive.AsSpan()),
                    receiveBytes,
                    receiveDispls
                );
                double rawSeconds = Stopwatch.GetElapsedTime(rawStart).TotalSeconds;
                if (i >= warmup)
                    raw.Add(rawSeconds);
            }
        }
        return new Result(
            (long)send.Length * size,
            DispatchBenchmark.Median(wrapper),
            mpi is null ? null : DispatchBenchmark.Median(raw)
        );
    }

    private static int[] Displacements(int[] counts)
    {
        var displs = new int[counts.Length];
        for (int i = 1; i < counts.Length; i++)
            displs[i] = displs[i - 1] + counts[i - 1];
        return displs;
    }
}
