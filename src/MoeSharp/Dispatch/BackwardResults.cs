using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>Gradients from <see cref="TokenDispatcher.CombineBackward"/>.</summary>
/// <param name="GradRoutedOutput"><c>[R, D]</c>: gradient of the experts' output, expert-major like the
/// dispatch (in bfloat16 where the dispatch placed the rows in the padded experts' layout).</param>
/// <param name="GradTopScores">
/// Shaped like the dispatch's <c>topScores</c> (<c>[T, K]</c> or <c>[T_s, K]</c>; rows outside the shard are
/// zero) when scores multiply at combine; null when they multiply before the experts.
/// </param>
public sealed record CombineBackwardResult(Tensor GradRoutedOutput, Tensor? GradTopScores);

/// <summary>Gradients from <see cref="TokenDispatcher.DispatchBackward"/>.</summary>
/// <param name="GradX">
/// Shaped like the dispatch's <c>x</c>; in the replicated layout only this rank's shard rows are nonzero,
/// so sum it over the SP group (<see cref="TokenDispatcher.ReduceSequenceParallel"/>).
/// </param>
/// <param name="GradTopScores">Like <c>topScores</c> when scores multiply before the experts; otherwise null.</param>
public sealed record DispatchBackwardResult(Tensor GradX, Tensor? GradTopScores);
