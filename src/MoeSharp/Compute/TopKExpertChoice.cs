using System.Runtime.CompilerServices;

namespace MoeSharp.Compute;

/// <summary>
/// One token's expert choice: optional node-limited masking, then top-k of the biased scores with ties
/// broken toward the lower id (torchtitan/DeepSeek-V3 semantics, made deterministic). The experts of the
/// discarded groups are either left out (torchtitan) or compete with a choice score of 0 (transformers'
/// DeepSeek-V3 <c>masked_fill(~score_mask, 0.0)</c> before its top-k over all experts).
/// </summary>
internal static class TopKExpertChoice
{
    /// <summary>
    /// Chooses <c>chosen.Length</c> experts for one token and writes their ids in ascending order.
    /// </summary>
    /// <param name="biased">Scores used for choosing (scores + expert bias): [E].</param>
    /// <param name="numExpertGroups">G, or 0 for no node-limited routing.</param>
    /// <param name="numLimitedGroups">Groups that stay eligible when G &gt; 0.</param>
    /// <param name="eligible">Scratch: [E].</param>
    /// <param name="groupScores">Scratch: [G] (empty when G = 0).</param>
    /// <param name="chosen">Output ids: [K], ascending.</param>
    /// <param name="zeroDiscardedGroups">Experts of the groups not kept compete with choice score 0 instead of being
    /// left out.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Choose(
        ReadOnlySpan<float> biased,
        int numExpertGroups,
        int numLimitedGroups,
        Span<bool> eligible,
        Span<float> groupScores,
        Span<int> chosen,
        bool zeroDiscardedGroups = false
    )
    {
        int numExperts = biased.Length;
        if (numExpertGroups > 0)
        {
            MarkEligibleGroups(biased, numExpertGroups, numLimitedGroups, eligible, groupScores);
        }
        else
        {
            eligible.Fill(true);
        }

        // Insertion into a list sorted by (score desc, id asc): experts arrive in ascending id, so a
        // strict '>' keeps the earlier (lower) id ahead on a tie. Without zeroDiscardedGroups only eligible
        // experts enter the list, so their choice score is their biased score.
        int k = chosen.Length;
        int filled = 0;
        for (int e = 0; e < numExperts; e++)
        {
            if (!eligible[e] && !zeroDiscardedGroups)
                continue;
            float v = ChoiceScore(biased, eligible, e);
            if (filled == k && !Better(v, ChoiceScore(biased, eligible, chosen[k - 1])))
                continue;
            int pos = filled < k ? filled++ : k - 1;
            while (pos > 0 && Better(v, ChoiceScore(biased, eligible, chosen[pos - 1])))
            {
                chosen[pos] = chosen[pos - 1];
                pos--;
            }
            chosen[pos] = e;
        }
        chosen.Sort();
    }

    /// <summary>The score an expert competes with: its biased score, or +0 in a discarded group.</summary>
    private static float ChoiceScore(ReadOnlySpan<float> biased, ReadOnlySpan<bool> eligible, int e) =>
        eligible[e] ? biased[e] : 0f;

    /// <summary>True when <paramref name="v"/> ranks strictly above <paramref name="current"/> (NaN ranks
    /// last).</summary>
    private static bool Better(float v, float current) => v > current || (float.IsNaN(current) && !float.IsNaN(v));

    private static void MarkEligibleGroups(
        ReadOnlySpan<float> biased,
        int groups,
        int limited,
        Span<bool> eligible,
        Span<float> groupScores
    )
    {
        int perGroup = biased.Length / groups;
        for (int g = 0; g < groups; g++)
        {
            // A group's score is the sum of its two best experts (DeepSeek-V3 node-limited routing).
            float best = float.NegativeInfinity,
                second = float.NegativeInfinity;
            for (int e = g * perGroup; e < (g + 1) * perGroup; e++)
            {
                float v = biased[e];
                if (v > best)
                {
                    second = best;
                    best = v;
                }
                else if (v > second)
                {
                    second = v;
                }
            }
            groupScores[g] = best + second;
        }

        eligible.Clear();
        Span<bool> taken = groups <= 256 ? stackalloc bool[groups] : new bool[groups];
        taken.Clear();
        for (int pick = 0; pick < limited; pick++)
        {
            int bestGroup = -1;
            for (int g = 0; g < groups; g++)
            {
                if (taken[g])
                    continue;
                // Strict '>' while scanning ascending ids breaks ties toward the lower group id.
                if (bestGroup < 0 || Better(groupScores[g], groupScores[bestGroup]))
                    bestGroup = g;
            }
            taken[bestGroup] = true;
            eligible.Slice(bestGroup * perGroup, perGroup).Fill(true);
        }
    }
}
