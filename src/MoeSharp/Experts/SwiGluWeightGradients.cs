using MoeSharp.Tensors;

namespace MoeSharp.Experts;

/// <summary>
/// The weight gradients of SwiGLU experts: running sums a backward pass continues (rank-ordered accumulation) or the
/// weight half of <see cref="SwiGluGradients"/>. float32, shaped like the weights.
/// </summary>
/// <param name="GradW1">Gradient of the gate projection w1: [E_local, H, D] or [Hs, D].</param>
/// <param name="GradW2">Gradient of the down projection w2: [E_local, D, H] or [D, Hs].</param>
/// <param name="GradW3">Gradient of the up projection w3: [E_local, H, D] or [Hs, D].</param>
public sealed record SwiGluWeightGradients(Tensor GradW1, Tensor GradW2, Tensor GradW3)
{
    /// <summary>
    /// Views of the same storage with w1's and w3's shape <paramref name="gateShape"/> and w2's
    /// <paramref name="downShape"/> (e.g. a shared expert's <c>[Hs, D]</c> as the one-expert stack <c>[1, Hs, D]</c>).
    /// </summary>
    /// <param name="gateShape">The new shape of GradW1 and GradW3.</param>
    /// <param name="downShape">The new shape of GradW2.</param>
    /// <exception cref="ArgumentException">A shape has another element count than its tensor.</exception>
    public SwiGluWeightGradients Reshape(int[] gateShape, int[] downShape) =>
        new(GradW1.Reshape(gateShape), GradW2.Reshape(downShape), GradW3.Reshape(gateShape));
}
