using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary><see cref="IOptimizerKernels"/> on host tensors (<see cref="HostAdamW"/>).</summary>
public sealed class HostOptimizerKernels : IOptimizerKernels
{
    /// <summary>The one instance (the kernel has no state).</summary>
    public static HostOptimizerKernels Instance { get; } = new();

    private HostOptimizerKernels() { }

    /// <inheritdoc />
    public void AdamWStep(Tensor value, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamWScalars scalars) =>
        HostAdamW.Step(
            value.AsSpan<float>(),
            grad.AsSpan<float>(),
            expAvg.AsSpan<float>(),
            expAvgSq.AsSpan<float>(),
            scalars
        );
}
