using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// Reproducible random dispatch inputs: tokens, scores and K distinct expert ids per token. The one generator of
/// random routing the CLI (<c>moe run</c>, <c>bench</c>, <c>soak</c>), the tests and the benchmarks share, so a seed
/// means the same problem everywhere.
/// </summary>
public static class RandomInputs
{
    /// <summary>
    /// Inputs of one data-parallel group from <paramref name="random"/>, drawn in this order: x in [-1, 1), the
    /// scores, the ids.
    /// </summary>
    /// <param name="random">The generator (seeded: <c>new Random(seed)</c> is stable across runs and machines).</param>
    /// <param name="tokens">T.</param>
    /// <param name="dim">D.</param>
    /// <param name="experts">E.</param>
    /// <param name="topK">K ≤ E.</param>
    /// <param name="idType">The ids' dtype: int64 (the default) or int32.</param>
    /// <param name="signedScores">
    /// Scores in [-0.5, 1.5) rather than [0, 1): a router without a softmax or with a bias gives negative or large
    /// weights, and dispatch and combine must carry them unchanged.
    /// </param>
    public static GroupInputs Create(
        Random random,
        int tokens,
        int dim,
        int experts,
        int topK,
        DType idType = DType.Int64,
        bool signedScores = false
    )
    {
        ArgumentNullException.ThrowIfNull(random);
        var x = Tensor.Uninitialized(DType.Float32, tokens, dim);
        foreach (ref float v in x.AsSpan<float>())
            v = (float)(random.NextDouble() * 2 - 1);
        var scores = Tensor.Uninitialized(DType.Float32, tokens, topK);
        foreach (ref float v in scores.AsSpan<float>())
            v = signedScores ? (float)(random.NextDouble() * 2 - 0.5) : (float)random.NextDouble();
        return new GroupInputs(x, scores, ExpertIds(random, tokens, experts, topK, idType));
    }

    /// <summary><c>[T, K]</c> ids (int64 or int32) as <see cref="DistinctExpertIds"/> draws them.</summary>
    /// <exception cref="ArgumentException"><paramref name="idType"/> is neither int64 nor int32.</exception>
    public static Tensor ExpertIds(Random random, int tokens, int experts, int topK, DType idType = DType.Int64)
    {
        long[] ids = DistinctExpertIds(random, tokens, experts, topK);
        return idType switch
        {
            DType.Int64 => Tensor.FromArray(ids, tokens, topK),
            DType.Int32 => Tensor.FromArray(Array.ConvertAll(ids, id => (int)id), tokens, topK),
            _ => throw new ArgumentException($"idType = {idType}: expert ids are Int64 or Int32", nameof(idType)),
        };
    }

    /// <summary>
    /// <c>[T·K]</c> expert ids, token-major: K distinct experts per token, as a top-k router would choose.
    /// </summary>
    public static long[] DistinctExpertIds(Random random, int tokens, int experts, int topK)
    {
        ArgumentNullException.ThrowIfNull(random);
        var ids = new long[checked(tokens * topK)];
        var pool = new int[experts];
        for (int t = 0; t < tokens; t++)
        {
            // A partial Fisher–Yates shuffle: the first K of a random permutation of the experts.
            for (int e = 0; e < experts; e++)
                pool[e] = e;
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
