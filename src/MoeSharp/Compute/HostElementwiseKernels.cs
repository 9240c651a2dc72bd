using System.Numerics;
using System.Runtime.CompilerServices;
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
    public unsafe void AddRows(Tensor into, int intoRow, Tensor rows)
    {
        Span<float> a = into.AsSpan<float>().Slice(intoRow * into.RowLength, rows.ElementCount);
        ReadOnlySpan<float> b = rows.AsSpan<float>();
        fixed (float* pa = a)
        fixed (float* pb = b)
        {
            nint a0 = (nint)pa,
                b0 = (nint)pb;
            // One float32 addition per element, whatever the vector width or the chunk: the sum's bits stay fixed.
            HostParallel.For(a.Length, 12, (start, end) => AddRange((float*)a0, (float*)b0, start, end));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void AddRange(float* a, float* b, int start, int end)
    {
        var sum = new Span<float>(a + start, end - start);
        var addend = new ReadOnlySpan<float>(b + start, end - start);
        int i = 0;
        for (; i + Vector<float>.Count <= sum.Length; i += Vector<float>.Count)
            (new Vector<float>(sum[i..]) + new Vector<float>(addend[i..])).CopyTo(sum[i..]);
        for (; i < sum.Length; i++)
            sum[i] += addend[i];
    }
}
