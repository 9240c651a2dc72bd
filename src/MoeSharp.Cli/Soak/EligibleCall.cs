namespace MoeSharp.Cli.Soak;

/// <summary>
/// One collective call of a rank, as a fault-free run made it, and whether each fault kind can apply to it.
/// </summary>
/// <param name="Index">The call's index on its rank (splits count too, as in <see
/// cref="FaultPlan.Collective"/>).</param>
/// <param name="Shapes">Whether a buffer one element shorter can be passed (it is not empty).</param>
/// <param name="Counts">Whether its counts can be corrupted (an all-to-all-v that sends to its last peer).</param>
internal sealed record EligibleCall(int Index, bool Shapes, bool Counts)
{
    /// <summary>Whether <paramref name="kind"/> can be injected into this call.</summary>
    public bool Takes(FaultKind kind) =>
        kind switch
        {
            FaultKind.CorruptCounts => Counts,
            FaultKind.MismatchedShapes => Shapes,
            _ => true,
        };
}
