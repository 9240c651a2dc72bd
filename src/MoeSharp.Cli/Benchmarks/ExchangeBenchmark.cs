using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Mpi;
using MoeSharp.Tensors;

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
        // In elements: the dispatch just moved these rows, so each direction's total is within one tensor.
        int[] sendCounts = sendRows.Select(r => checked(r * dim)).ToArray();
        int[] receiveCounts = receiveRows.Select(r => checked(r * dim)).ToArray();
        var mpi = world as MpiProcessGroup;
        int[] sendBytes = [],
            receiveBytes = [];
        if (mpi is not null)
        {
            // Raw MPI_Alltoallv counts bytes in int. Every rank learns whether every rank's bytes fit before any
            // enters it, so all refuse together (a rank refusing alone would leave the others waiting in the call).
            int[]? sent = ByteCounts(sendCounts, size),
                received = ByteCounts(receiveCounts, size);
            var fits = new int[world.Size];
            world.AllGather<int>([sent is null || received is null ? 0 : 1], fits);
            int rank = Array.IndexOf(fits, 0);
            if (rank >= 0)
            {
                throw new SizeLimitException(
                    $"the raw MPI_Alltoallv baseline counts bytes in int, and rank {rank} sends or receives more "
                        + $"than {int.MaxValue} bytes per exchange (--tokens × --top-k × --dim × {size} bytes): "
                        + "give fewer tokens or a smaller --dim"
                );
            }
            (sendBytes, receiveBytes) = (sent!, received!);
        }
        int[] sendDispls = Displacements(sendBytes),
            receiveDispls = Displacements(receiveBytes);
        var send = new T[sendCounts.Sum()];
        var receive = new T[receiveCounts.Sum()];
        new Random(world.Rank).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(send.AsSpan()));

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

    /// <summary>
    /// At validation, for <c>moe bench --comm mpi</c>: every rank sends its tokens' T·K rows per exchange, so a total
    /// over <see cref="int.MaxValue"/> bytes is known from the options to exceed the raw baseline's counts; the line
    /// naming them, or null.
    /// </summary>
    internal static string? RawLimitError(Commands.BenchShape shape)
    {
        long bytes = MemoryBudget.Multiply(
            MemoryBudget.Multiply((long)shape.Tokens * shape.TopK, shape.Dim),
            shape.RowType.SizeOf()
        );
        return bytes <= int.MaxValue
            ? null
            : $"--tokens {shape.Tokens} --top-k {shape.TopK} --dim {shape.Dim}: each rank sends {bytes} bytes per "
                + $"exchange, more than the {int.MaxValue} that bench's raw MPI_Alltoallv baseline counts in int "
                + "(--comm mpi)";
    }

    /// <summary>
    /// The byte counts of <paramref name="elements"/> elements of <paramref name="size"/> bytes each, or null when
    /// their total (and so a count or a displacement) exceeds <see cref="int.MaxValue"/>, what raw
    /// <c>MPI_Alltoallv</c> addresses.
    /// </summary>
    internal static int[]? ByteCounts(int[] elements, int size)
    {
        long total = 0;
        foreach (int e in elements)
            total += (long)e * size;
        return total > int.MaxValue ? null : elements.Select(e => e * size).ToArray();
    }

    /// <summary>Prefix sums of counts whose total fits an int (<see cref="ByteCounts"/>).</summary>
    private static int[] Displacements(int[] counts)
    {
        var displs = new int[counts.Length];
        for (int i = 1; i < counts.Length; i++)
            displs[i] = displs[i - 1] + counts[i - 1];
        return displs;
    }
}
