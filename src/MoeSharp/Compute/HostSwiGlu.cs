namespace MoeSharp.Compute;

/// <summary>
/// The element-wise part of SwiGLU: <c>a = silu(g) ⊙ u</c> with <c>silu(z) = z · sigmoid(z)</c>, forward
/// and backward, in float32. Every element is one fixed sequence of operations (row-invariant).
/// </summary>
public static class HostSwiGlu
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
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            activation[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
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
    public static void Backward(ReadOnlySpan<float> gradActivation, ReadOnlySpan<float> gate, ReadOnlySpan<float> up,
        Span<float> gradGate, Span<float> gradUp)
    {
        int n = gate.Length;
        CheckSame(n, gradActivation.Length, nameof(gradActivation));
        CheckSame(n, up.Length, nameof(up));
        CheckSame(n, gradGate.Length, nameof(gradGate));
        CheckSame(n, gradUp.Length, nameof(gradUp));
        for (int i = 0; i < n; i++)
        {
            float g = gate[i];
            float sig = 1f / (1f + MathF.Exp(-g));
            float da = gradActivation[i];
            gradUp[i] = da * g * sig;
            gradGate[i] = da * up[i] * sig * (1f + (g * (1f - sig)));
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
