using MoeSharp.Tensors;

namespace MoeSharp.Benchmarks;

/// <summary>
/// Reproducible random dispatch inputs, made the way <c>moe</c>'s verification makes them: tokens in
/// [-1, 1), positive scores, and K distinct expert ids per token (a partial Fisher–Yates shuffle, as a top-k
/// router would choose).
/// </summary>
internal static class BenchInputs
{
    /// <summary>x: <c>[T, D]</c> float32, scores: <c>[T, K]</c> float32, ids: <c>[T, K]</c> int64.</summary>
    public static (Tensor X, Tensor Scores, Tensor Ids) Create(int seed, int tokens, int dim, int experts, int topK)
    {
        var random = new Random(seed);
        var x = Tensor.Uninitialized(DType.Float32, tokens, dim);
        foreach (ref float v in x.AsSpan<float>()) v = (float)(random.NextDouble() * 2 - 1);
        var scores = Tensor.Uninitialized(DType.Float32, tokens, topK);
        foreach (ref float v in scores.AsSpan<float>()) v = (float)random.NextDouble();
        var ids = Tensor.Uninitialized(DType.Int64, tokens, topK);
        Span<long> idSpan = ids.AsSpan<long>();
        var pool = new int[experts];
        for (int t = 0; t < tokens; t++)
        {
            for (int e = 0; e < experts; e++) pool[e] = e;
            for (int k = 0; k < topK; k++)
            {
                int pick = random.Next(k, experts);
                (pool[k], pool[pick]) = (pool[pick], pool[k]);
                idSpan[t * topK + k] = pool[k];
            }
        }
        return (x, scores, ids);
    }
}
