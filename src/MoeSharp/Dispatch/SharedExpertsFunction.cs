using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// Shared experts, computed by <see cref="TokenDispatcher.Combine"/> while the combine exchange is in
/// flight, for this rank's own rows only.
/// </summary>
/// <param name="ownTokens"><c>[T_s, D]</c>: the real tokens of this rank's shard.</param>
/// <returns><c>[T_s, D]</c>: the shared experts' output, the starting value of each token's sum.</returns>
public delegate Tensor SharedExpertsFunction(Tensor ownTokens);
