using MoeSharp.Tensors;

namespace MoeSharp.Routing;

/// <summary>Gradients produced by <see cref="TokenChoiceTopKRouter.Backward"/>.</summary>
/// <param name="GradX">Gradient of the router input: [T, D] float32.</param>
/// <param name="GradGateWeight">Gradient of the gate weight: [E, D] float32.</param>
public sealed record RouterGradients(Tensor GradX, Tensor GradGateWeight);
