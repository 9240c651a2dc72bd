using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoeSharp.Compute;

/// <summary>
/// The element-wise part of SwiGLU: <c>a = silu(g) ⊙ u</c> with <c>silu(z) = z · sigmoid(z)</c>, forward
/// and backward, in float32. Every element is one fixed sequence of operations (row-invariant): the vector loops
/// compute each lane with the scalar tail's float32 operations in the same order, and <see cref="VectorExpF"/> gives
/// <see cref="MathF.Exp"/>'s bits.
/// </summary>
public static unsafe class HostSwiGlu
{
    /// <summary><c>activation = silu(gate) ⊙ up</c>.</summary>
    /// <param name="gate">g = x · w1ᵀ: [R, H].</param>
    /// <param name="up">u = x · w3ᵀ: [R, H].</param>
    /// <param name="activation">Output a: [R, H].</param>
    /// <exception cref="ArgumentException">Lengths differ.</exception>
    public static void Forward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> activation)
    {
        CheckSame(gate.Length, up.Length, nameof(up));
        CheckSame(gate.Length, activation.Length, nameof(activation));
        fixed (float* pg = gate)
        fixed (float* pu = up)
        fixed (float* pa = activation)
        {
            nint g0 = (nint)pg,
                u0 = (nint)pu,
                a0 = (nint)pa;
            // Element-wise: chunks over threads compute exactly what one loop would.
            HostParallel.For(
                gate.Length,
                12,
                (start, end) => ForwardRange((float*)g0, (float*)u0, (float*)a0, start, end)
            );
        }
    }

    // Optimized at once: a kernel called a few times per step would otherwise run its vector loop unoptimized (tier 0)
    // for many steps, at a fraction of the scalar loop's speed.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardRange(float* g, float* u, float* a, int start, int end)
    {
        int i = start;
        if (VectorExpF.IsAvailable)
        {
            for (; i + 8 <= end; i += 8)
            {
                Vector256<float> gi = Vector256.Load(g + i);
                (gi / (Vector256<float>.One + VectorExpF.Exp(-gi)) * Vector256.Load(u + i)).Store(a + i);
            }
        }
        for (; i < end; i++)
            a[i] = g[i] / (1f + MathF.Exp(-g[i])) * u[i];
    }

    /// <summary>
    /// Backward: <c>dg = da ⊙ u ⊙ silu'(g)</c> with <c>silu'(z) = σ(z)(1 + z(1 − σ(z)))</c>, and
    /// <c>du = da ⊙ silu(g)</c>.
    /// </summary>
    /// <param name="gradActivation">da: [R, H].</param>
    /// <param name="gate">g from the forward pass: [R, H].</param>
    /// <param name="up">u from the forward pass: [R, H].</param>
    /// <param name="gradGate">Output dg: [R, H].</param>
    /// <param name="gradUp">Output du: [R, H].</param>
    /// <exception cref="ArgumentException">Lengths differ.</exception>
    public static void Backward(
        ReadOnlySpan<float> gradActivation,
        ReadOnlySpan<float> gate,
        ReadOnlySpan<float> up,
        Span<float> gradGate,
        Span<float> gradUp
    )
    {
        int n = gate.Length;
        CheckSame(n, gradActivation.Length, nameof(gradActivation));
        CheckSame(n, up.Length, nameof(up));
        CheckSame(n, gradGate.Length, nameof(gradGate));
        CheckSame(n, gradUp.Length, nameof(gradUp));
        fixed (float* pda = gradActivation)
        fixed (float* pg = gate)
        fixed (float* pu = up)
        fixed (float* pdg = gradGate)
        fixed (float* pdu = gradUp)
        {
            nint da0 = (nint)pda,
                g0 = (nint)pg,
                u0 = (nint)pu,
                dg0 = (nint)pdg,
                du0 = (nint)pdu;
            HostParallel.For(
                n,
                20,
                (start, end) => BackwardRange((float*)da0, (float*)g0, (float*)u0, (float*)dg0, (float*)du0, start, end)
            );
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardRange(float* daP, float* gP, float* uP, float* dgP, float* duP, int start, int end)
    {
        int i = start;
        if (VectorExpF.IsAvailable)
        {
            for (; i + 8 <= end; i += 8)
            {
                Vector256<float> g = Vector256.Load(gP + i);
                Vector256<float> sig = Vector256<float>.One / (Vector256<float>.One + VectorExpF.Exp(-g));
                Vector256<float> da = Vector256.Load(daP + i);
                (da * g * sig).Store(duP + i);
                Vector256<float> slope = Vector256<float>.One + (g * (Vector256<float>.One - sig));
                (da * Vector256.Load(uP + i) * sig * slope).Store(dgP + i);
            }
        }
        for (; i < end; i++)
        {
            float g = gP[i];
            float sig = 1f / (1f + MathF.Exp(-g));
            float da = daP[i];
            duP[i] = da * g * sig;
            dgP[i] = da * uP[i] * sig * (1f + (g * (1f - sig)));
        }
    }

    private static void CheckSame(int expected, int actual, string name)
    {
        if (expected != actual)
        {
            throw new ArgumentException($"{name} has {actual} elements but gate has {expected}", name);
        }
    }
}
