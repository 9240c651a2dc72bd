namespace MoeSharp.Compute;

/// <summary>
/// How many threads the host kernels may use: one budget for the process (default: every core), shared out among
/// the in-process ranks so that rank threads and kernel threads together never ask for more cores than the budget.
/// </summary>
/// <remarks>
/// A rank of an in-process world of W ranks runs its kernels on about <c>Count / W</c> threads (its own thread
/// included; at least one). Code outside a world uses <see cref="Count"/>. Thread counts never change a result:
/// every host kernel computes each output the same way on any number of threads.
/// </remarks>
public static class HostThreads
{
    private static int s_count = Environment.ProcessorCount;

    [ThreadStatic]
    private static int t_share;

    /// <summary>Threads of the whole process (default <see cref="Environment.ProcessorCount"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public static int Count
    {
        get => s_count;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            s_count = value;
        }
    }

    /// <summary>The threads the calling thread's kernels may use: its rank's share, or <see cref="Count"/>.</summary>
    public static int Current => t_share > 0 ? Math.Min(t_share, s_count) : s_count;

    /// <summary>
    /// Gives the calling thread rank <paramref name="rank"/>'s share of <see cref="Count"/> among
    /// <paramref name="ranks"/> ranks (the first <c>Count mod ranks</c> ranks get one more; every rank at least one).
    /// </summary>
    /// <param name="rank">This thread's rank in the world.</param>
    /// <param name="ranks">Ranks of the world running in this process.</param>
    internal static void ShareForRank(int rank, int ranks)
    {
        int count = s_count;
        t_share = Math.Max(1, (count / ranks) + (rank < count % ranks ? 1 : 0));
    }

    /// <summary>Forgets the calling thread's share (it uses <see cref="Count"/> again).</summary>
    internal static void ClearShare() => t_share = 0;
}
