using MoeSharp.Tensors;

namespace MoeSharp.Layer;

/// <summary>What <see cref="MoeLayer.Backward"/> returns. Weight gradients are the same tensors as the layer's
/// <see cref="Training.Parameter.Grad"/> buffers.</summary>
/// <param name="GradX">Gradient of the layer input, shaped like the forward's <c>x</c> (<c>[T, D]</c> replicated,
/// <c>[T_s, D]</c> sharded); in the replicated layout already summed over the SP group.</param>
/// <param name="GradGateWeight"><c>[E, D]</c>: summed over every rank's tokens.</param>
/// <param name="GradW1"><c>[E/S, H, D]</c>: this rank's experts, over every token they processed.</param>
/// <param name="GradW2"><c>[E/S, D, H]</c>.</param>
/// <param name="GradW3"><c>[E/S, H, D]</c>.</param>
/// <param name="GradSharedW1"><c>[Hs, D]</c> summed over every rank's tokens, or null without a shared expert.</param>
/// <param name="GradSharedW2"><c>[D, Hs]</c>, or null.</param>
/// <param name="GradSharedW3"><c>[Hs, D]</c>, or null.</param>
public sealed record MoeLayerGradients(
    Tensor GradX,
    Tensor GradGateWeight,
    Tensor GradW1,
    Tensor GradW2,
    Tensor GradW3,
    Tensor? GradSharedW1,
    Tensor? GradSharedW2,
    Tensor? GradSharedW3
);
