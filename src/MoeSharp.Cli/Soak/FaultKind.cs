namespace MoeSharp.Cli.Soak;

/// <summary>What an injected fault does to one collective call of one rank.</summary>
internal enum FaultKind
{
    /// <summary>The rank throws instead of calling the collective.</summary>
    Throw,

    /// <summary>
    /// The rank arrives after the group's timeout (then calls the collective, which has failed by then).
    /// </summary>
    DelayPastTimeout,

    /// <summary>
    /// The rank returns from the collective without taking part; its buffers keep whatever they held.
    /// </summary>
    ReturnEarly,

    /// <summary>
    /// An all-to-all-v sends one element more to its first peer and one fewer to its last than the peers expect.
    /// </summary>
    CorruptCounts,

    /// <summary>The rank passes a buffer one element shorter than its peers expect.</summary>
    MismatchedShapes,
}

/// <summary>
/// One injected fault: on world rank <paramref name="Rank"/>, at its first eligible collective call from number
/// <paramref name="Collective"/> on.
/// </summary>
/// <param name="Rank">The culprit's world rank.</param>
/// <param name="Collective">The index of the collective call (counted on the culprit over every group it uses).</param>
/// <param name="Kind">What happens.</param>
internal sealed record FaultPlan(int Rank, int Collective, FaultKind Kind);

/// <summary>The fault injected on the culprit's call, thrown on that rank.</summary>
internal sealed class InjectedFaultException(string message) : Exception(message);
