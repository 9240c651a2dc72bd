using MoeSharp.Tensors;

namespace MoeSharp.Routing;

/// <summary>
/// What <see cref="TokenChoiceTopKRouter.Forward"/> returns; also the context its backward needs.
/// </summary>
/// <param name="TopScores">Routing weights of the chosen experts: [T, K] float32, in the order of
/// <paramref name="ExpertIds"/>.</param>
/// <param name="ExpertIds">Chosen expert ids: [T, K] int64, ascending per token.</param>
/// <param name="TokensPerExpert">Tokens routed to each expert: [E] int64, a host tensor on every backend.</param>
/// <param name="Scores">Unbiased scores <c>score_func(x · gateᵀ)</c>: [T, E] float32 (saved for backward).</param>
public sealed record RouterOutput(Tensor TopScores, Tensor ExpertIds, Tensor TokensPerExpert, Tensor Scores);
