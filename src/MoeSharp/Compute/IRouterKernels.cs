using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The router's kernels: the score function and its backward, the token-choice top-k and its backward, and the
/// tokens per expert. Scores are <c>[T, E]</c> float32, choices <c>[T, K]</c> (float32 weights, int64 ids).
/// </summary>
public interface IRouterKernels
{
    /// <summary>Row-wise softmax or element-wise sigmoid of <c>[T, E]</c> logits.</summary>
    /// <param name="function">Softmax or sigmoid.</param>
    /// <param name="logits">The logits.</param>
    /// <param name="scores">The scores (may be <paramref name="logits"/> itself).</param>
    void Score(ScoreFunction function, Tensor logits, Tensor scores);

    /// <summary>Gradient of the logits from the scores'.</summary>
    /// <param name="function">The function the scores came from.</param>
    /// <param name="scores">Its output.</param>
    /// <param name="gradScores">Gradient of the loss w.r.t. the scores.</param>
    /// <param name="gradLogits">Output (may be <paramref name="gradScores"/> itself).</param>
    void ScoreBackward(ScoreFunction function, Tensor scores, Tensor gradScores, Tensor gradLogits);

    /// <summary>
    /// Token-choice top-k of <c>scores + expertBias</c> among the eligible experts (see <see cref="TopKOptions"/> for
    /// node-limited choice), ties toward the lower id, NaN last; ids ascending per token; top scores the chosen
    /// unbiased scores divided by <see cref="TopKOptions.Denominator"/> of their sum, times the route scale. Bitwise
    /// the same on every backend.
    /// </summary>
    /// <param name="scores">[T, E] float32.</param>
    /// <param name="expertBias">[E] float32 bias for choosing only (a tensor of this backend), or null.</param>
    /// <param name="options">Groups, normalisation and scale.</param>
    /// <param name="topScores">Output [T, K] float32.</param>
    /// <param name="expertIds">Output [T, K] int64.</param>
    void TopK(Tensor scores, Tensor? expertBias, TopKOptions options, Tensor topScores, Tensor expertIds);

    /// <summary>
    /// Backward of <see cref="TopK"/>'s top scores into <c>[T, E]</c> score gradients: zero for unchosen experts;
    /// for chosen ones <c>scale · g</c>, or with route norm <c>scale · (g_j − Σ_i g_i p_i / S) / S</c>,
    /// <c>S = Σ p + ε</c>.
    /// </summary>
    /// <param name="scores">The unbiased [T, E] scores of the forward.</param>
    /// <param name="expertIds">Its [T, K] int64 choice.</param>
    /// <param name="gradTopScores">[T, K] gradient of the top scores.</param>
    /// <param name="options">The forward's options (normalisation and scale).</param>
    /// <param name="gradScores">Output [T, E].</param>
    void TopScoresBackward(
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        TopKOptions options,
        Tensor gradScores
    );

    /// <summary>
    /// <see cref="Score"/> of <paramref name="logits"/> into <paramref name="scores"/>, then <see cref="TopK"/> of
    /// the scores: the router's forward after its product, as one call a device may run as one kernel (the same
    /// values as the two calls). By default, the two calls.
    /// </summary>
    /// <param name="function">Softmax or sigmoid.</param>
    /// <param name="logits">[T, E] float32 logits.</param>
    /// <param name="scores">Output [T, E] scores (may be <paramref name="logits"/> itself).</param>
    /// <param name="expertBias">[E] float32 bias for choosing only, or null.</param>
    /// <param name="options">Groups, normalisation and scale.</param>
    /// <param name="topScores">Output [T, K] float32.</param>
    /// <param name="expertIds">Output [T, K] int64.</param>
    void ScoreTopK(
        ScoreFunction function,
        Tensor logits,
        Tensor scores,
        Tensor? expertBias,
        TopKOptions options,
        Tensor topScores,
        Tensor expertIds
    )
    {
        Score(function, logits, scores);
        TopK(scores, expertBias, options, topScores, expertIds);
    }

    /// <summary>
    /// <see cref="TopScoresBackward"/> into <paramref name="gradLogits"/>, then <see cref="ScoreBackward"/> in place:
    /// the logits' gradient from the top scores', as one call a device may run as one kernel (the same values as the
    /// two calls). By default, the two calls.
    /// </summary>
    /// <param name="function">The function the scores came from.</param>
    /// <param name="scores">The unbiased [T, E] scores of the forward.</param>
    /// <param name="expertIds">Its [T, K] int64 choice.</param>
    /// <param name="gradTopScores">[T, K] gradient of the top scores.</param>
    /// <param name="options">The forward's options (normalisation and scale).</param>
    /// <param name="gradLogits">Output [T, E].</param>
    void TopScoresScoreBackward(
        ScoreFunction function,
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        TopKOptions options,
        Tensor gradLogits
    )
    {
        TopScoresBackward(scores, expertIds, gradTopScores, options, gradLogits);
        ScoreBackward(function, scores, gradLogits, gradLogits);
    }

    /// <summary>
    /// Adds the tokens per expert of <c>[T, K]</c> int64 ids to <paramref name="counts"/>, on this backend's device
    /// and queued like the other kernels: nothing waits for it, and the counts stay where the ids are (start from
    /// zeros for one call's counts; keep adding for a running total).
    /// </summary>
    /// <param name="expertIds">The ids.</param>
    /// <param name="counts"><c>[E]</c> int64 on the same device: <c>counts[e]</c> grows by the ids equal to e.</param>
    void CountPerExpert(Tensor expertIds, Tensor counts);
}
