using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>The optimizer's kernel: one AdamW update of a parameter with its moment estimates.</summary>
public interface IOptimizerKernels
{
    /// <summary>
    /// One AdamW update of <paramref name="value"/> in place with its moment estimates, in PyTorch's order:
    /// <c>m = β1·m + (1−β1)·g</c>, <c>v = β2·v + (1−β2)·g·g</c>,
    /// <c>θ = θ·decay − stepSize·m / (√v / bias2Sqrt + ε)</c>.
    /// </summary>
    /// <param name="value">θ, updated in place.</param>
    /// <param name="grad">g, the gradient of the loss w.r.t. θ.</param>
    /// <param name="expAvg">m, updated in place.</param>
    /// <param name="expAvgSq">v, updated in place.</param>
    /// <param name="scalars">The step's scalars.</param>
    void AdamWStep(Tensor value, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamWScalars scalars);
}

/// <summary>The scalars of one AdamW step (bias corrections folded in).</summary>
/// <param name="Beta1">β1, the first moment's decay rate.</param>
/// <param name="Beta2">β2, the second moment's decay rate.</param>
/// <param name="StepSize">lr / (1 − β1^t).</param>
/// <param name="Bias2Sqrt">√(1 − β2^t).</param>
/// <param name="Epsilon">ε, keeps the denominator away from zero.</param>
/// <param name="Decay">1 − lr·weight decay.</param>
public readonly record struct AdamWScalars(
    float Beta1,
    float Beta2,
    float StepSize,
    float Bias2Sqrt,
    float Epsilon,
    float Decay
);
