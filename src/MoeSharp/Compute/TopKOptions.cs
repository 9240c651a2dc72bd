namespace MoeSharp.Compute;

/// <summary>
/// How <see cref="IRouterKernels.TopK"/> chooses and weighs experts: node-limited choice (expert groups), route
/// normalisation and scale. The defaults are plain top-k with unnormalised, unscaled scores.
/// </summary>
public sealed record TopKOptions
{
    /// <summary>The ε torchtitan's router adds to the sum of the chosen scores before normalising.</summary>
    public const float DefaultNormEpsilon = 1e-20f;

    /// <summary>Plain top-k: no groups, no normalisation, scale 1.</summary>
    public static TopKOptions Default { get; } = new();

    /// <summary>G, the expert groups of node-limited routing, or 0 for choosing among every expert.</summary>
    public int NumExpertGroups { get; init; }

    /// <summary>
    /// Groups kept per token when <see cref="NumExpertGroups"/> &gt; 0: those with the best sum of their two best
    /// biased scores.
    /// </summary>
    public int NumLimitedGroups { get; init; }

    /// <summary>Divide the chosen scores by their sum + <see cref="NormEpsilon"/>.</summary>
    public bool RouteNorm { get; init; }

    /// <summary>Added to the sum of the chosen scores when <see cref="RouteNorm"/>.</summary>
    public float NormEpsilon { get; init; } = DefaultNormEpsilon;

    /// <summary>Factor on every top score (after normalising).</summary>
    public float RouteScale { get; init; } = 1f;

    /// <summary>
    /// With groups: false leaves the experts of the groups not kept out of the choice (torchtitan); true lets them
    /// compete with the choice score +0 (transformers' DeepSeek-V3, <c>masked_fill(~score_mask, 0.0)</c>), which
    /// matters when fewer than K kept experts have a positive biased score.
    /// </summary>
    public bool ZeroDiscardedGroups { get; init; }

    /// <summary>
    /// What the chosen scores are divided by: their <paramref name="sum"/> + <see cref="NormEpsilon"/> with
    /// <see cref="RouteNorm"/>, else 1 (so every backend rounds the same way).
    /// </summary>
    /// <param name="sum">Sum of the chosen unbiased scores, in the order of the chosen ids.</param>
    public float Denominator(float sum) => RouteNorm ? sum + NormEpsilon : 1f;

    /// <summary>
    /// Why these options cannot route <paramref name="topK"/> of <paramref name="numExperts"/> experts, or null when
    /// they can: the groups must split the experts evenly into groups of at least two, and the kept groups must hold at
    /// least K experts.
    /// </summary>
    /// <param name="numExperts">E.</param>
    /// <param name="topK">K.</param>
    /// <returns>One line naming the values, or null.</returns>
    public string? Problem(int numExperts, int topK)
    {
        if (topK < 1 || topK > numExperts)
            return $"top-k {topK} must be in [1, {numExperts}] (the number of experts)";
        if (!float.IsFinite(RouteScale))
            return $"route scale {RouteScale} must be finite";
        if (NumExpertGroups < 0)
            return $"num_expert_groups {NumExpertGroups} must not be negative";
        if (NumExpertGroups == 0)
        {
            return NumLimitedGroups == 0 ? null : $"num_limited_groups {NumLimitedGroups} needs num_expert_groups > 0";
        }
        if (numExperts % NumExpertGroups != 0 || numExperts / NumExpertGroups < 2)
        {
            return $"num_expert_groups {NumExpertGroups} must divide the {numExperts} experts into groups of at "
                + "least two";
        }
        if (NumLimitedGroups < 1 || NumLimitedGroups > NumExpertGroups)
        {
            return $"num_limited_groups {NumLimitedGroups} must be in [1, {NumExpertGroups}] (num_expert_groups)";
        }
        int perGroup = numExperts / NumExpertGroups;
        return NumLimitedGroups * perGroup < topK
            ? $"num_limited_groups {NumLimitedGroups} × {perGroup} experts per group leaves fewer than top-k {topK} "
                + "eligible"
            : null;
    }
}
