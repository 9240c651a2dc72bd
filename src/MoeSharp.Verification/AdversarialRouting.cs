using MoeSharp.Dispatch;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// Dispatch problems with routing no capacity bound is made for: every token of every group routed to the same K
/// experts, so the rank that owns them receives every row of every rank (K = 1: every token to one expert).
/// </summary>
public static class AdversarialRouting
{
    /// <summary>
    /// Every token of every group routed to experts <c>firstExpert, firstExpert + 1, …</c> (K of them); rows and scores
    /// random (reproducible from the sizes), ids int64, scores multiplied before the experts.
    /// </summary>
    /// <param name="world">Ranks (EP size).</param>
    /// <param name="sp">SP group size, dividing <paramref name="world"/>.</param>
    /// <param name="tokens">T of each group.</param>
    /// <param name="dim">D.</param>
    /// <param name="experts">E, divisible by <paramref name="world"/>.</param>
    /// <param name="topK">K.</param>
    /// <param name="firstExpert">The first of the K experts; <c>firstExpert + K ≤ E</c>.</param>
    public static DispatchCase Case(int world, int sp, int tokens, int dim, int experts, int topK, int firstExpert)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(world, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(sp, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(firstExpert + topK, experts);
        var random = new Random(world * 100 + sp * 10 + topK);
        var groups = new GroupInputs[world / sp];
        for (int g = 0; g < groups.Length; g++)
        {
            GroupInputs inputs = RandomInputs.Create(
                random,
                tokens,
                dim,
                experts,
                topK,
                DType.Int64,
                signedScores: true
            );
            Span<long> ids = inputs.Ids.AsSpan<long>();
            for (int i = 0; i < ids.Length; i++)
                ids[i] = firstExpert + i % topK;
            groups[g] = inputs;
        }
        var config = new TokenDispatcherConfig(experts, topK) { ScoreBeforeExperts = true };
        return new DispatchCase(world, sp, config, groups);
    }
}
