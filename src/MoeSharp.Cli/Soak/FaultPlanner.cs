namespace MoeSharp.Cli.Soak;

/// <summary>
/// Plans a fault that is sure to fire: from the calls each rank made in a fault-free run of the same problem (the
/// dispatcher's calls depend only on the problem), a random rank, a random kind and a random call that can take it.
/// </summary>
internal static class FaultPlanner
{
    private static readonly FaultKind[] Kinds = Enum.GetValues<FaultKind>();

    /// <summary>
    /// A plan at one of the recorded calls, or null when no rank made a call that any kind can take. The rank and kind
    /// are drawn uniformly among the pairs that have such a call, then the call uniformly among that pair's calls.
    /// </summary>
    /// <param name="random">The soak's random source.</param>
    /// <param name="calls">Each world rank's calls in a fault-free run.</param>
    public static FaultPlan? Plan(Random random, IReadOnlyList<IReadOnlyList<EligibleCall>> calls)
    {
        var pairs = new List<(int Rank, FaultKind Kind, EligibleCall[] Calls)>();
        for (int rank = 0; rank < calls.Count; rank++)
        {
            foreach (FaultKind kind in Kinds)
            {
                EligibleCall[] eligible = calls[rank].Where(c => c.Takes(kind)).ToArray();
                if (eligible.Length > 0)
                    pairs.Add((rank, kind, eligible));
            }
        }
        if (pairs.Count == 0)
            return null;
        var (r, k, options) = pairs[random.Next(pairs.Count)];
        return new FaultPlan(r, options[random.Next(options.Length)].Index, k);
    }
}
