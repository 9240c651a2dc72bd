using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Kernel bodies behind <see cref="IlgpuRouterKernels"/>: the same operation sequences as
/// <c>HostScoreFunctions</c> and the router's top-k (<c>TopKExpertChoice</c>), one thread per row or element.
/// </summary>
internal static class RouterKernelBodies
{
    /// <summary>Thread t: softmax of row t, <c>exp(z - max) / Σ exp(z - max)</c>, the sum in ascending e.</summary>
    public static void SoftmaxRows(Index1D t, ArrayView<float> logits, ArrayView<float> scores, int columns)
    {
        int start = t * columns;
        float max = float.NegativeInfinity;
        for (int e = 0; e < columns; e++)
            max = Math.Max(max, logits[start + e]);
        float sum = 0f;
        for (int e = 0; e < columns; e++)
        {
            float v = MathF.Exp(logits[start + e] - max);
            scores[start + e] = v;
            sum += v;
        }
        for (int e = 0; e < columns; e++)
            scores[start + e] = scores[start + e] / sum;
    }

    /// <summary>Thread i: <c>1 / (1 + exp(−z))</c>.</summary>
    public static void Sigmoid(Index1D i, ArrayView<float> logits, ArrayView<float> scores) =>
        scores[i] = 1f / (1f + MathF.Exp(-logits[i]));

    /// <summary>
    /// Thread t: the top-k of <c>scores[t] + bias</c> with ties toward the lower expert id (NaN ranks last), among the
    /// experts of the <paramref name="limitedGroups"/> best of <paramref name="groups"/> groups when groups &gt; 0
    /// (with
    /// <paramref name="zeroDiscarded"/> set, the other experts compete with choice score +0 instead, as transformers'
    /// DeepSeek-V3 router does), written ascending to <c>ids[t]</c>; <c>topScores[t]</c> = the chosen unbiased scores,
    /// divided by their sum + eps when <paramref name="routeNorm"/> is set, times <paramref name="routeScale"/>. The id
    /// row doubles as the selection list and the top-score row holds its choice scores until the end, so no per-thread
    /// local memory is needed.
    /// </summary>
    public static void TopK(
        Index1D t,
        ArrayView<float> scores,
        ArrayView<float> bias,
        int hasBias,
        int experts,
        int k,
        int groups,
        int limitedGroups,
        int zeroDiscarded,
        int routeNorm,
        float normEpsilon,
        float routeScale,
        ArrayView<float> topScores,
        ArrayView<long> ids
    )
    {
        int row = t * experts,
            at = t * k;
        int filled = 0;
        int perGroup = groups > 0 ? experts / groups : experts;
        bool groupEligible = true;
        for (int e = 0; e < experts; e++)
        {
            if (groups > 0 && e % perGroup == 0)
                groupEligible = GroupChosen(scores, bias, hasBias, row, perGroup, groups, limitedGroups, e / perGroup);
            if (!groupEligible && zeroDiscarded == 0)
                continue;
            float v = groupEligible ? Biased(scores, bias, hasBias, row, e) : 0f;
            if (filled == k && !Better(v, topScores[at + k - 1]))
                continue;
            int pos = filled < k ? filled++ : k - 1;
            while (pos > 0 && Better(v, topScores[at + pos - 1]))
            {
                ids[at + pos] = ids[at + pos - 1];
                topScores[at + pos] = topScores[at + pos - 1];
                pos--;
            }
            ids[at + pos] = e;
            topScores[at + pos] = v;
        }
        // Ascending ids (insertion sort; the ids are distinct).
        for (int j = 1; j < k; j++)
        {
            long v = ids[at + j];
            int p = j;
            while (p > 0 && ids[at + p - 1] > v)
            {
                ids[at + p] = ids[at + p - 1];
                p--;
            }
            ids[at + p] = v;
        }
        float sum = 0f;
        for (int j = 0; j < k; j++)
        {
            float s = scores[row + (int)ids[at + j]];
            topScores[at + j] = s;
            sum += s;
        }
        float denominator = routeNorm != 0 ? sum + normEpsilon : 1f;
        for (int j = 0; j < k; j++)
            topScores[at + j] = topScores[at + j] / denominator * routeScale;
    }

    /// <summary>
    /// Whether group <paramref name="g"/> is among the <paramref name="limited"/> groups the host picks one by one
    /// (best sum of its two best biased scores first, ties toward the lower group id, NaN last): it is when fewer
    /// than <paramref name="limited"/> groups precede it in that order. Recomputing the group scores costs O(G·E)
    /// per token but needs no per-thread memory.
    /// </summary>
    private static bool GroupChosen(
        ArrayView<float> scores,
        ArrayView<float> bias,
        int hasBias,
        int row,
        int perGroup,
        int groups,
        int limited,
        int g
    )
    {
        float mine = GroupScore(scores, bias, hasBias, row, perGroup, g);
        int ahead = 0;
        for (int h = 0; h < groups; h++)
        {
            if (h == g)
                continue;
            float other = GroupScore(scores, bias, hasBias, row, perGroup, h);
            if (Better(other, mine) || (!Better(mine, other) && h < g))
                ahead++;
        }
        return ahead < limited;
    }

    /// <summary>The sum of the two best biased scores of group <paramref name="g"/>, as the host computes it.</summary>
    private static float GroupScore(
        ArrayView<float> scores,
        ArrayView<float> bias,
        int hasBias,
        int row,
        int perGroup,
        int g
    )
    {
        float best = float.NegativeInfinity,
            second = float.NegativeInfinity;
        for (int e = g * perGroup; e < (g + 1) * perGroup; e++)
        {
            float v = Biased(scores, bias, hasBias, row, e);
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
        return best + second;
    }

    private static float Biased(ArrayView<float> scores, ArrayView<float> bias, int hasBias, int row, int e) =>
        hasBias != 0 ? scores[row + e] + bias[e] : scores[row + e];

    /// <summary>True when <paramref name="v"/> ranks strictly above <paramref name="current"/> (NaN ranks
    /// last).</summary>
    private static bool Better(float v, float current) => v > current || (float.IsNaN(current) && !float.IsNaN(v));
}
