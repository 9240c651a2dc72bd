using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>Reproducible random dispatch inputs: tokens, positive scores and K distinct expert ids per token.</summary>
public static class RandomInputs
{
    /// <summary>Inputs of one data-parallel group from <paramref name="random"/>.</summary>
    /// <param name="random">The generator (seeded: <c>new Random(seed)</c> is stable across runs and machines).</param>
    /// <param name="tokens">T.</param>
    /// <param name="dim">D.</param>
    /// <param name="experts">E.</param>
    /// <param name="topK">K ≤ E.</param>
    public static GroupInputs Create(Random random, int tokens, int dim, int experts, int topK)
    {
        var x = Tensor.Uninitialized(DType.Float32, tokens, dim);
        foreach (ref float v in x.AsSpan<float>()) v = (float)(random.NextDouble() * 2 - 1);
        var scores = Tensor.Uninitialized(DType.Float32, tokens, topK);
        foreach (ref float v in scores.AsSpan<float>()) v = (float)random.NextDouble();
        var ids = Tensor.FromArray(DistinctExpertIds(random, tokens, experts, topK), tokens, topK);
        return new GroupInputs(x, scores, ids);
    }

    /// <summary><c>[T·K]</c> expert ids, token-major: K distinct experts per token, as a top-k router would choose.</summary>
    public static long[] DistinctExpertIds(Random random, int tokens, int experts, int topK)
    {
        var ids = new long[tokens * topK];
        var pool = new int[experts];
        for (int t = 0; t < tokens; t++)
        {
            // Partial Fisher–Yates.
            for (int e = 0; e < experts; e++) pool[e] = e;
            for (int k = 0; k < topK; k++)
            {
                int pick = random.Next(k, experts);
                (pool[k], pool[pick]) = (pool[pick], pool[k]);
                ids[t * topK + k] = pool[k];
            }
        }
        return ids;
    }
}
