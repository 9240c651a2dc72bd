using System.Runtime.CompilerServices;
using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// <see cref="IRouterKernels"/> on host tensors: <see cref="HostScoreFunctions"/> and a per-token top-k
/// (<see cref="TopKExpertChoice"/>). Bitwise deterministic.
/// </summary>
public sealed class HostRouterKernels : IRouterKernels
{
    /// <summary>The one instance (the kernels have no state).</summary>
    public static HostRouterKernels Instance { get; } = new();

    private HostRouterKernels() { }

    /// <inheritdoc />
    public void Score(ScoreFunction function, Tensor logits, Tensor scores)
    {
        if (function == ScoreFunction.Softmax)
        {
            HostScoreFunctions.Softmax(logits.AsSpan<float>(), scores.AsSpan<float>(), logits.RowLength);
        }
        else
        {
            HostScoreFunctions.Sigmoid(logits.AsSpan<float>(), scores.AsSpan<float>());
        }
    }

    /// <inheritdoc />
    public void ScoreBackward(ScoreFunction function, Tensor scores, Tensor gradScores, Tensor gradLogits)
    {
        if (function == ScoreFunction.Softmax)
        {
            HostScoreFunctions.SoftmaxBackward(
                scores.AsSpan<float>(),
                gradScores.AsSpan<float>(),
                gradLogits.AsSpan<float>(),
                scores.RowLength
            );
        }
        else
        {
            HostScoreFunctions.SigmoidBackward(
                scores.AsSpan<float>(),
                gradScores.AsSpan<float>(),
                gradLogits.AsSpan<float>()
            );
        }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The options cannot route K of these E experts
    /// (<see cref="TopKOptions.Problem"/>).</exception>
    public void TopK(Tensor scores, Tensor? expertBias, TopKOptions options, Tensor topScores, Tensor expertIds)
    {
        ArgumentNullException.ThrowIfNull(options);
        int tokens = scores.Rows,
            e = scores.RowLength,
            k = topScores.RowLength;
        if (tokens > 0 && options.Problem(e, k) is { } problem)
            throw new ArgumentException(problem, nameof(options));
        // Tokens are independent: each chunk of them chooses with scratch of its own, as one loop over all would.
        HostParallel.For(
            tokens,
            16L * e,
            (start, end) => TopKTokens(scores, expertBias, options, topScores, expertIds, start, end)
        );
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TopKTokens(
        Tensor scores,
        Tensor? expertBias,
        TopKOptions options,
        Tensor topScores,
        Tensor expertIds,
        int start,
        int end
    )
    {
        int e = scores.RowLength,
            k = topScores.RowLength;
        ReadOnlySpan<float> s = scores.AsSpan<float>();
        ReadOnlySpan<float> bias = expertBias is null ? default : expertBias.AsSpan<float>();
        var biased = new float[e];
        var eligible = new bool[e];
        var groupScores = new float[options.NumExpertGroups];
        var chosen = new int[k];
        for (int t = start; t < end; t++)
        {
            ReadOnlySpan<float> row = s.Slice(t * e, e);
            if (bias.IsEmpty)
                row.CopyTo(biased);
            else
                for (int i = 0; i < e; i++)
                    biased[i] = row[i] + bias[i];
            TopKExpertChoice.Choose(
                biased,
                options.NumExpertGroups,
                options.NumLimitedGroups,
                eligible,
                groupScores,
                chosen,
                options.ZeroDiscardedGroups
            );

            Span<float> ts = topScores.Row<float>(t);
            Span<long> ids = expertIds.Row<long>(t);
            float sum = 0f;
            for (int j = 0; j < k; j++)
            {
                ids[j] = chosen[j];
                ts[j] = row[chosen[j]];
                sum += ts[j];
            }
            float denominator = options.Denominator(sum);
            for (int j = 0; j < k; j++)
                ts[j] = ts[j] / denominator * options.RouteScale;
        }
    }

    /// <inheritdoc />
    public void TopScoresBackward(
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        TopKOptions options,
        Tensor gradScores
    )
    {
        ArgumentNullException.ThrowIfNull(options);
        int tokens = scores.Rows,
            e = scores.RowLength;
        // Tokens are independent: each chunk clears and fills its own rows of the gradient.
        HostParallel.For(
            tokens,
            8L * e,
            (start, end) => TopScoresBackwardTokens(scores, expertIds, gradTopScores, options, gradScores, start, end)
        );
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TopScoresBackwardTokens(
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        TopKOptions options,
        Tensor gradScores,
        int start,
        int end
    )
    {
        int e = scores.RowLength,
            k = expertIds.RowLength;
        float routeScale = options.RouteScale;
        ReadOnlySpan<float> all = scores.AsSpan<float>();
        Span<float> gz = gradScores.AsSpan<float>();
        gz.Slice(start * e, (end - start) * e).Clear();
        for (int t = start; t < end; t++)
        {
            ReadOnlySpan<long> ids = expertIds.Row<long>(t);
            ReadOnlySpan<float> g = gradTopScores.Row<float>(t);
            ReadOnlySpan<float> row = all.Slice(t * e, e);
            Span<float> gs = gz.Slice(t * e, e);
            if (options.RouteNorm)
            {
                // top_j = scale · p_j / S with S = Σ p + ε, so dL/dp_j = scale · (g_j − Σ_i g_i p_i / S) / S.
                float sum = 0f,
                    weighted = 0f;
                for (int j = 0; j < k; j++)
                    sum += row[(int)ids[j]];
                float denominator = options.Denominator(sum);
                for (int j = 0; j < k; j++)
                    weighted += g[j] * row[(int)ids[j]];
                float mean = weighted / denominator;
                for (int j = 0; j < k; j++)
                    gs[(int)ids[j]] = routeScale * (g[j] - mean) / denominator;
            }
            else
            {
                for (int j = 0; j < k; j++)
                    gs[(int)ids[j]] = routeScale * g[j];
            }
        }
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void CountPerExpert(Tensor expertIds, Tensor counts)
    {
        Span<long> into = counts.AsSpan<long>();
        foreach (long id in expertIds.AsSpan<long>())
            into[(int)id]++;
    }
}
