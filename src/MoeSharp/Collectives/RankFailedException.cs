namespace MoeSharp.Collectives;

/// <summary>
/// Thrown by <see cref="InProcessWorld"/> when a rank's code failed. <see cref="Exception.InnerException"/>
/// is the exception the first failing rank threw (the original error, not the
/// <see cref="CollectiveException"/> the other ranks got as a consequence).
/// </summary>
public sealed class RankFailedException : Exception
{
    /// <summary>Creates the exception for <paramref name="rank"/>, whose error is <paramref name="inner"/>.</summary>
    /// <param name="rank">World rank that failed first.</param>
    /// <param name="inner">The exception that rank threw.</param>
    /// <param name="rankErrors">Each rank's exception, by world rank; null where the rank succeeded.</param>
    public RankFailedException(int rank, Exception inner, IReadOnlyList<Exception?> rankErrors)
        : base(Describe(rank, inner, rankErrors), inner)
    {
        Rank = rank;
        RankErrors = rankErrors;
    }

    /// <summary>World rank that failed first.</summary>
    public int Rank { get; }

    /// <summary>Every rank's exception, by world rank; null where the rank's code returned normally.</summary>
    public IReadOnlyList<Exception?> RankErrors { get; }

    private static string Describe(int rank, Exception inner, IReadOnlyList<Exception?> rankErrors)
    {
        int others = rankErrors.Count(e => e is not null) - 1;
        string consequence = others > 0 ? $" ({others} other rank(s) failed as a consequence)" : "";
        return $"rank {rank} failed: {inner.GetType().Name}: {inner.Message}{consequence}";
    }
}
