using MoeSharp.Routing;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// A dense, single-rank, float64 MoE layer written straight from the definition in
/// <c>shared/golden/README.md</c> (test oracle, no shared code with the library): router → top-k → each
/// token's chosen experts → shared expert output plus the routed terms in ascending expert id.
/// </summary>
internal static class ReferenceMoeLayer
{
    /// <summary>The layer's outputs.</summary>
    internal sealed record Result(double[] Out, double[] TopScores, long[] ExpertIds, long[] TokensPerExpert);

    /// <summary>
    /// Forward pass. <paramref name="p"/> maps golden names (<c>x</c>, <c>router.gate.weight</c>,
    /// <c>router.expert_bias</c> (optional), <c>experts.w1</c>, …, <c>shared.w1</c>, …) to values.
    /// </summary>
    public static Result Forward(MoeLayerConfig c, int tokens, IReadOnlyDictionary<string, double[]> p)
    {
        int d = c.Dim,
            e = c.Experts,
            k = c.TopK,
            h = c.Hidden;
        double[] x = p["x"],
            gate = p["router.gate.weight"];
        p.TryGetValue("router.expert_bias", out double[]? bias);
        var output = new double[tokens * d];
        var topScores = new double[tokens * k];
        var ids = new long[tokens * k];
        var counts = new long[e];

        for (int t = 0; t < tokens; t++)
        {
            var xt = new ArraySegment<double>(x, t * d, d);
            var scores = new double[e];
            for (int i = 0; i < e; i++)
            {
                double z = 0;
                for (int j = 0; j < d; j++)
                    z += xt[j] * gate[(i * d) + j];
                scores[i] = z;
            }
            if (c.ScoreFunc == ScoreFunction.Softmax)
            {
                double max = scores.Max(),
                    sum = 0;
                for (int i = 0; i < e; i++)
                    sum += scores[i] = Math.Exp(scores[i] - max);
                for (int i = 0; i < e; i++)
                    scores[i] /= sum;
            }
            else
            {
                for (int i = 0; i < e; i++)
                    scores[i] = 1 / (1 + Math.Exp(-scores[i]));
            }

            int[] chosen = Choose(c, scores.Select((s, i) => s + (bias?[i] ?? 0)).ToArray());
            double denominator = c.RouteNorm ? chosen.Sum(i => scores[i]) + 1e-20 : 1;
            for (int j = 0; j < k; j++)
            {
                ids[(t * k) + j] = chosen[j];
                topScores[(t * k) + j] = scores[chosen[j]] / denominator * c.RouteScale;
                counts[chosen[j]]++;
            }

            var outT = new double[d];
            if (c.SharedHidden > 0)
            {
                double[] y = SwiGlu(xt.ToArray(), p["shared.w1"], p["shared.w2"], p["shared.w3"], 0, c.SharedHidden, d);
                // Qwen2-MoE's shared_expert_gate: sigmoid(x · g) scales the shared output, when present.
                double gateValue = 1;
                if (p.TryGetValue("shared.gate.weight", out double[]? g))
                {
                    double z = 0;
                    for (int j = 0; j < d; j++)
                        z += xt[j] * g[j];
                    gateValue = 1 / (1 + Math.Exp(-z));
                }
                for (int j = 0; j < d; j++)
                    outT[j] += gateValue * y[j];
            }
            for (int j = 0; j < k; j++)
            {
                double s = topScores[(t * k) + j];
                double[] v = xt.Select(a => c.ScoreBeforeExperts ? s * a : a).ToArray();
                double[] y = SwiGlu(v, p["experts.w1"], p["experts.w2"], p["experts.w3"], chosen[j], h, d);
                for (int q = 0; q < d; q++)
                    outT[q] += c.ScoreBeforeExperts ? y[q] : s * y[q];
            }
            outT.CopyTo(output, t * d);
        }
        return new Result(output, topScores, ids, counts);
    }

    /// <summary>The scalar loss <c>Σ out ⊙ gradOut</c> whose gradients the golden files hold.</summary>
    public static double Loss(MoeLayerConfig c, int tokens, IReadOnlyDictionary<string, double[]> p, double[] gradOut)
    {
        double[] output = Forward(c, tokens, p).Out;
        double loss = 0;
        for (int i = 0; i < output.Length; i++)
            loss += output[i] * gradOut[i];
        return loss;
    }

    /// <summary>Top-k ids of the (biased) scores after node-limited masking, ascending; ties to the lower id.</summary>
    private static int[] Choose(MoeLayerConfig c, double[] biased)
    {
        int e = biased.Length;
        var eligible = Enumerable.Repeat(c.NumExpertGroups == 0, e).ToArray();
        if (c.NumExpertGroups > 0)
        {
            int per = e / c.NumExpertGroups;
            var groupScores = Enumerable
                .Range(0, c.NumExpertGroups)
                .Select(g => biased.Skip(g * per).Take(per).OrderByDescending(v => v).Take(2).Sum())
                .ToArray();
            foreach (
                int g in Enumerable
                    .Range(0, c.NumExpertGroups)
                    .OrderByDescending(g => groupScores[g])
                    .ThenBy(g => g)
                    .Take(c.NumLimitedGroups)
            )
            {
                for (int i = g * per; i < (g + 1) * per; i++)
                    eligible[i] = true;
            }
        }
        return Enumerable
            .Range(0, e)
            .Where(i => eligible[i])
            .OrderByDescending(i => biased[i])
            .ThenBy(i => i)
            .Take(c.TopK)
            .OrderBy(i => i)
            .ToArray();
    }

    /// <summary>
    /// <c>w2 · (silu(w1 · v) ⊙ (w3 · v))</c> for expert <paramref name="expert"/> of a stacked weight.
    /// </summary>
    private static double[] SwiGlu(double[] v, double[] w1, double[] w2, double[] w3, int expert, int h, int d)
    {
        var a = new double[h];
        for (int i = 0; i < h; i++)
        {
            double g = 0,
                u = 0;
            for (int j = 0; j < d; j++)
            {
                g += w1[(expert * h * d) + (i * d) + j] * v[j];
                u += w3[(expert * h * d) + (i * d) + j] * v[j];
            }
            a[i] = g / (1 + Math.Exp(-g)) * u;
        }
        var y = new double[d];
        for (int q = 0; q < d; q++)
        {
            double sum = 0;
            for (int i = 0; i < h; i++)
                sum += w2[(expert * d * h) + (q * h) + i] * a[i];
            y[q] = sum;
        }
        return y;
    }
}
