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
    /// <summary>The environment variable that sets <see cref="Count"/> for a whole process.</summary>
    public const string EnvironmentVariable = "MOESHARP_THREADS";

    /// <summary>The most threads <see cref="EnvironmentVariable"/> may ask for.</summary>
    public const int MaxCount = 4096;

    private static int s_count;

    [ThreadStatic]
    private static int t_share;

    /// <summary>
    /// Threads of the whole process: <see cref="EnvironmentVariable"/> when set, else
    /// <see cref="Environment.ProcessorCount"/>, until a program sets it.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value set is less than 1.</exception>
    /// <exception cref="ArgumentException"><see cref="EnvironmentVariable"/> is set but not a whole number from 1 to
    /// <see cref="MaxCount"/>.</exception>
    public static int Count
    {
        get => s_count > 0 ? s_count : s_count = FromEnvironment();
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            s_count = value;
        }
    }

    /// <summary>The threads the calling thread's kernels may use: its rank's share, or <see cref="Count"/>.</summary>
    public static int Current => t_share > 0 ? Math.Min(t_share, Count) : Count;

    /// <summary>
    /// Gives the calling thread rank <paramref name="rank"/>'s share of <see cref="Count"/> among
    /// <paramref name="ranks"/> ranks (the first <c>Count mod ranks</c> ranks get one more; every rank at least one).
    /// </summary>
    /// <param name="rank">This thread's rank in the world.</param>
    /// <param name="ranks">Ranks of the world running in this process.</param>
    internal static void ShareForRank(int rank, int ranks)
    {
        int count = Count;
        t_share = Math.Max(1, (count / ranks) + (rank < count % ranks ? 1 : 0));
    }

    /// <summary>
    /// Why <paramref name="text"/>, a value of <see cref="EnvironmentVariable"/>, cannot set <see cref="Count"/>, or
    /// null when it can (a whole number from 1 to <see cref="MaxCount"/>, or unset or blank for every core).
    /// </summary>
    /// <param name="text">The variable's value; null when it is not set.</param>
    public static string? CheckVariable(string? text) =>
        string.IsNullOrWhiteSpace(text) || TryParse(text, out _)
            ? null
            : $"environment variable {EnvironmentVariable}='{text}' must be a whole number from 1 to {MaxCount}";

    private static bool TryParse(string text, out int n) =>
        int.TryParse(
            text,
            System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture,
            out n
        ) && n is >= 1 and <= MaxCount;

    private static int FromEnvironment()
    {
        string? text = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (CheckVariable(text) is string problem)
            throw new ArgumentException(problem);
        return string.IsNullOrWhiteSpace(text)
            ? Environment.ProcessorCount
            : int.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
    }
}
