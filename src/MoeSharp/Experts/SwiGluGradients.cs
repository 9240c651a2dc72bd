using MoeSharp.Tensors;

namespace MoeSharp.Experts;

/// <summary>Gradients of a SwiGLU backward pass (grouped experts or the shared expert).</summary>
/// <param name="GradX">Gradient of the input rows: [R, D] (grouped) or [T, D] (shared).</param>
/// <param name="GradW1">Same shape as w1: [E_local, H, D] or [Hs, D].</param>
/// <param name="GradW2">Same shape as w2: [E_local, D, H] or [D, Hs].</param>
/// <param name="GradW3">Same shape as w3: [E_local, H, D] or [Hs, D].</param>
public sealed record SwiGluGradients(Tensor GradX, Tensor GradW1, Tensor GradW2, Tensor GradW3)
{
    /// <summary>The three weight gradients without the input's.</summary>
    public SwiGluWeightGradients Weights => new(GradW1, GradW2, GradW3);
}
