using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary><see cref="IElementwiseKernels"/> on host tensors (<see cref="HostSwiGlu"/> and a plain row sum).</summary>
public sealed class HostElementwiseKernels : IElementwiseKernels
{
    /// <summary>The one instance (the kernels have no state).</summary>
    public static HostElementwiseKernels Instance { get; } = new();

    private HostElementwiseKernels() { }

    /// <inheritdoc />
    public void SwiGluForward(Tensor gate, Tensor up, Tensor activation) =>
        HostSwiGlu.Forward(gate.AsSpan<float>(), up.AsSpan<float>(), activation.AsSpan<float>());

    /// <inheritdoc />
    public void SwiGluBackward(Tensor gradActivation, Tensor gate, Tensor up, Tensor gradGate, Tensor gradUp) =>
        HostSwiGlu.Backward(
            gradActivation.AsSpan<float>(),
            gate.AsSpan<float>(),
            up.AsSpan<float>(),
            gradGate.AsSpan<float>(),
            gradUp.AsSpan<float>()
        );

    /// <inheritdoc />
    public void AddRows(Tensor into, int intoRow, Tensor rows)
    {
        Span<float> a = into.AsSpan<float>().Slice(intoRow * into.RowLength, rows.ElementCount);
        ReadOnlySpan<float> b = rows.AsSpan<float>();
        for (int i = 0; i < a.Length; i++)
            a[i] += b[i];
    }
}
