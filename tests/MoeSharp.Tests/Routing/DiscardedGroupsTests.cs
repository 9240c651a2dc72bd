using CsCheck;
using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Routing;

/// <summary>
/// <see cref="TokenChoiceTopKRouter.ZeroDiscardedGroups"/>: transformers' DeepSeek-V3 router masks the experts of the
/// groups it does not keep to the choice score 0.0 and runs the top-k over all experts; torchtitan's leaves them out.
/// Checked against a reference that follows <c>DeepseekV3TopkRouter.get_topk_indices</c> step by step (float32 choice
/// scores, as there; ties toward the lower id) with weights in float64, and backward against finite differences.
/// </summary>
public sealed class DiscardedGroupsTests
{
    /// <summary>
    /// D = E with an identity gate, so x's rows are the logits and the input gradient is the logits' one.
    /// </summary>
    private static (TokenChoiceTopKRouter Router, Tensor X) WithLogits(
        float[] logits,
        int tokens,
        int topK,
        int groups,
        int limited,
        bool zeroDiscarded,
        bool routeNorm = true,
        float routeScale = 2.5f
    )
    {
        int e = logits.Length / tokens;
        var router = new TokenChoiceTopKRouter(
            e,
            e,
            topK,
            ScoreFunction.Sigmoid,
            routeNorm,
            routeScale,
            groups,
            limited
        )
        {
            ZeroDiscardedGroups = zeroDiscarded,
        };
        Span<float> gate = router.GateWeight.AsSpan<float>();
        for (int i = 0; i < e; i++)
            gate[(i * e) + i] = 1f;
        return (router, Tensor.FromArray(logits, tokens, e));
    }

    [Fact]
    public void Discarded_groups_compete_with_zero_when_fewer_than_k_kept_experts_are_positive()
    {
        // Groups of 2. Biased scores (sigmoid in (0, 1) plus the bias): g0 = {+, −}, g1 = {−, −}, g2 = {+, −}.
        // Kept: the two best groups g0, g2, which hold one positive expert each; K = 3.
        float[] logits = [2f, 1f, 0f, 0.5f, 1f, -1f];
        float[] bias = [0f, -1.5f, -1.2f, -1.2f, 0f, -1.5f];
        var (exclude, x) = WithLogits(logits, 1, topK: 3, groups: 3, limited: 2, zeroDiscarded: false);
        // torchtitan: the third place goes to the best negative kept expert (1: σ(1) − 1.5 above 5: σ(−1) − 1.5).
        Assert.Equal([0L, 1, 4], exclude.Forward(x, Tensor.FromArray(bias, 6)).ExpertIds.AsSpan<long>().ToArray());
        var (zero, _) = WithLogits(logits, 1, topK: 3, groups: 3, limited: 2, zeroDiscarded: true);
        // transformers: experts 2 and 3 (group 1, discarded) score 0.0, above every negative; the tie goes to 2.
        RouterOutput output = zero.Forward(x, Tensor.FromArray(bias, 6));
        Assert.Equal([0L, 2, 4], output.ExpertIds.AsSpan<long>().ToArray());
        // Weights are the chosen unbiased scores, normalised, times the scale, whichever group they come from.
        double s0 = Sigmoid(2),
            s2 = Sigmoid(0),
            s4 = Sigmoid(1),
            sum = s0 + s2 + s4 + 1e-20;
        float[] weights = output.TopScores.AsSpan<float>().ToArray();
        Close(2.5 * s0 / sum, weights[0], 1e-6);
        Close(2.5 * s2 / sum, weights[1], 1e-6);
        Close(2.5 * s4 / sum, weights[2], 1e-6);
    }

    [Fact]
    public void Zero_masking_matches_the_transformers_reference_and_exclusion_the_torchtitan_one()
    {
        int differing = 0;
        Gen.Select(Gen.Int[1, 12], Gen.Int[2, 5], Gen.Int[2, 4], Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (tokens, groups, perGroup, seed) =>
                {
                    var r = new Random(seed);
                    int e = groups * perGroup,
                        limited = 1 + r.Next(groups - 1),
                        k = 1 + r.Next(limited * perGroup);
                    // Logits on a coarse grid and biases down to −1.5, so ties and kept experts below zero are common.
                    float[] logits = Enumerable.Range(0, tokens * e).Select(_ => (r.Next(9) - 4) / 2f).ToArray();
                    float[] bias = Enumerable
                        .Range(0, e)
                        .Select(_ => r.Next(3) == 0 ? -1.5f + (r.Next(4) / 8f) : r.Next(3) / 16f)
                        .ToArray();
                    foreach (bool zeroDiscarded in new[] { true, false })
                    {
                        var (router, x) = WithLogits(logits, tokens, k, groups, limited, zeroDiscarded);
                        RouterOutput output = router.Forward(x, Tensor.FromArray(bias, e));
                        float[] scores = output.Scores.AsSpan<float>().ToArray();
                        long[] ids = output.ExpertIds.AsSpan<long>().ToArray();
                        float[] weights = output.TopScores.AsSpan<float>().ToArray();
                        for (int t = 0; t < tokens; t++)
                        {
                            float[] row = scores.AsSpan(t * e, e).ToArray();
                            int[] expected = ReferenceChoice(row, bias, groups, limited, k, zeroDiscarded);
                            Assert.Equal(expected.Select(i => (long)i), ids.Skip(t * k).Take(k));
                            double total = expected.Sum(i => (double)row[i]) + 1e-20;
                            for (int j = 0; j < k; j++)
                                Close(2.5 * row[expected[j]] / total, weights[(t * k) + j], 1e-6);
                            if (
                                zeroDiscarded
                                && !expected.SequenceEqual(ReferenceChoice(row, bias, groups, limited, k, false))
                            )
                                differing++;
                        }
                    }
                },
                iter: 200,
                threads: 1
            );
        Assert.True(differing > 0, "no sampled token told the two rules apart");
    }

    [Fact]
    public void Backward_through_an_expert_of_a_discarded_group_matches_finite_differences()
    {
        float[] logits = [2f, 1f, 0f, 0.5f, 1f, -1f];
        float[] bias = [0f, -1.5f, -1.2f, -1.2f, 0f, -1.5f];
        var (router, x) = WithLogits(logits, 1, topK: 3, groups: 3, limited: 2, zeroDiscarded: true);
        RouterOutput output = router.Forward(x, Tensor.FromArray(bias, 6));
        int[] ids = output.ExpertIds.AsSpan<long>().ToArray().Select(i => (int)i).ToArray();
        Assert.Equal([0, 2, 4], ids); // expert 2 comes from the discarded group 1
        float[] g = [0.3f, -0.7f, 1.1f];
        float[] gradLogits = router.Backward(output, x, Tensor.FromArray(g, 1, 3)).GradX.AsSpan<float>().ToArray();

        // L(z) = Σ_j g_j · 2.5 · σ(z_ids[j]) / (Σ_i σ(z_ids[i]) + 1e-20), the choice held fixed.
        double Loss(double[] z)
        {
            double sum = ids.Sum(i => Sigmoid(z[i])) + 1e-20;
            return ids.Select((i, j) => g[j] * 2.5 * Sigmoid(z[i]) / sum).Sum();
        }
        for (int e = 0; e < 6; e++)
        {
            double[] up = logits.Select(v => (double)v).ToArray(),
                down = (double[])up.Clone();
            up[e] += 1e-5;
            down[e] -= 1e-5;
            double numeric = (Loss(up) - Loss(down)) / 2e-5;
            Close(numeric, gradLogits[e], 1e-5);
        }
        Assert.NotEqual(0f, gradLogits[2]);
    }

    /// <summary>
    /// <c>DeepseekV3TopkRouter.get_topk_indices</c> for one token: choice = score + bias (float32); group score = the
    /// sum of its top 2; keep the best <paramref name="limited"/> groups; the others' experts get 0.0 (or, for
    /// torchtitan, are left out); top-k; ties toward the lower id. Ids ascending.
    /// </summary>
    private static int[] ReferenceChoice(
        float[] scores,
        float[] bias,
        int groups,
        int limited,
        int k,
        bool zeroDiscarded
    )
    {
        int e = scores.Length,
            perGroup = e / groups;
        float[] choice = scores.Select((s, i) => s + bias[i]).ToArray();
        float[] groupScores = Enumerable
            .Range(0, groups)
            .Select(gr => choice.Skip(gr * perGroup).Take(perGroup).OrderDescending().Take(2).ToArray())
            .Select(top => top[0] + top[1])
            .ToArray();
        var kept = Enumerable
            .Range(0, groups)
            .OrderByDescending(gr => groupScores[gr])
            .ThenBy(gr => gr)
            .Take(limited)
            .ToHashSet();
        return Enumerable
            .Range(0, e)
            .Where(i => zeroDiscarded || kept.Contains(i / perGroup))
            .OrderByDescending(i => kept.Contains(i / perGroup) ? choice[i] : 0f)
            .ThenBy(i => i)
            .Take(k)
            .Order()
            .ToArray();
    }

    private static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));

    private static void Close(double expected, double actual, double tolerance) =>
        Assert.True(
            Math.Abs(expected - actual) <= tolerance,
            $"expected {expected:R}, got {actual:R} (tolerance {tolerance})"
        );
}
