namespace MoeSharp.Collectives;

/// <summary>
/// Runs every rank of an in-process world on its own dedicated thread and waits for all of them: the
/// multi-rank harness for the embedded runtime and for tests.
/// </summary>
/// <remarks>
/// When a rank's code throws, the world is aborted, so every other rank's pending or later collective
/// throws a <see cref="CollectiveException"/> naming the failed rank; when a rank returns while peers
/// still wait for it in a collective, those peers fail at once. Every thread is joined before
/// <c>Run</c> returns or throws.
/// </remarks>
public static class InProcessWorld
{
    /// <summary>
    /// The most in-process ranks a world may have. Each rank is a dedicated OS thread (1 MB of stack reserved)
    /// blocking in collectives, and an all-to-all's count exchange grows as the square of the ranks. The
    /// experts are a multiple of the EP size and today's largest MoE models have 256 to 384 routed experts, so
    /// beyond 512 ranks an EP world would hold less than one expert per rank; larger worlds belong on MPI.
    /// </summary>
    public const int MaxRanks = 512;

    /// <summary>Runs <paramref name="body"/> on <paramref name="size"/> ranks and returns each rank's result.</summary>
    /// <param name="size">Number of ranks, from 1 to <see cref="MaxRanks"/>.</param>
    /// <param name="body">The code of one rank; receives that rank's world group.</param>
    /// <param name="timeout">How long a collective may wait for its peers (default 60 s).</param>
    /// <returns>Rank r's result at index r.</returns>
    /// <exception cref="RankFailedException">A rank's code threw; names the first failing rank and carries
    /// its original exception.</exception>
    public static T[] Run<T>(int size, Func<IProcessGroup, T> body, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (size > MaxRanks)
        {
            throw new ArgumentOutOfRangeException(
                nameof(size),
                size,
                $"an in-process world has at most {MaxRanks} ranks (one thread each); use MPI for more"
            );
        }
        var groups = InProcessProcessGroup.CreateWorld(size, timeout);
        var results = new T[size];
        var errors = new Exception?[size];
        var threads = new Thread[size];
        for (int r = 0; r < size; r++)
        {
            int rank = r;
            threads[r] = new Thread(() => RunRank(groups[rank], body, results, errors))
            {
                // A stuck rank must not keep the process alive after the test or tool gives up.
                IsBackground = true,
                Name = $"MoeSharp rank {rank}",
            };
        }

        foreach (var thread in threads)
            thread.Start();
        foreach (var thread in threads)
            thread.Join();

        int origin = groups[0].FailureOrigin;
        foreach (var group in groups)
            group.Dispose();
        if (Array.FindIndex(errors, e => e is not null) is var firstThrown and >= 0)
        {
            // The rank that reported the failure first is the cause; others threw because of it.
            int rank = origin >= 0 && errors[origin] is not null ? origin : firstThrown;
            // A rank that threw only because a peer's input was invalid points at the peer, whose own error says why.
            if (
                errors[rank] is PeerRankException { PeerWorldRank: int peer }
                && peer >= 0
                && peer < size
                && errors[peer] is not null
            )
                rank = peer;
            throw new RankFailedException(rank, errors[rank]!, errors);
        }

        return results;
    }

    /// <summary>Runs <paramref name="body"/> on <paramref name="size"/> ranks.</summary>
    /// <inheritdoc cref="Run{T}(int, Func{IProcessGroup, T}, TimeSpan?)"/>
    public static void Run(int size, Action<IProcessGroup> body, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        Run(
            size,
            group =>
            {
                body(group);
                return true;
            },
            timeout
        );
    }

    private static void RunRank<T>(
        InProcessProcessGroup group,
        Func<IProcessGroup, T> body,
        T[] results,
        Exception?[] errors
    )
    {
        int rank = group.Rank;
        try
        {
            // Rank threads and their kernels' threads share the process's thread budget. Inside the try: a bad
            // MOESHARP_THREADS throws here, and the rank must still fail the world and mark itself exited.
            Compute.HostThreads.ShareForRank(rank, group.Size);
            results[rank] = body(group);
        }
        catch (Exception ex)
        {
            errors[rank] = ex;
            group.Abort(ex);
        }
        finally
        {
            group.MarkExited();
        }
    }
}
