using MoeSharp.Tensors;

namespace MoeSharp.Experts;

/// <summary>
/// The output of a SwiGLU forward pass (<see cref="GroupedExperts.Forward"/> or
/// <see cref="SharedExpert.Forward"/>) and the activations its backward needs.
/// </summary>
/// <remarks>The input tensor is kept by reference: do not modify it before the backward pass.</remarks>
public sealed class SwiGluForwardResult
{
    internal SwiGluForwardResult(
        Tensor output,
        Tensor input,
        Tensor gate,
        Tensor up,
        Tensor activation,
        long[] rowsPerExpert
    )
    {
        Output = output;
        Input = input;
        Gate = gate;
        Up = up;
        Activation = activation;
        RowsPerExpert = rowsPerExpert;
    }

    /// <summary>y: [R, D] float32.</summary>
    public Tensor Output { get; }

    /// <summary>x: [R, D].</summary>
    internal Tensor Input { get; }

    /// <summary>g = x·w1ᵀ: [R, H].</summary>
    internal Tensor Gate { get; }

    /// <summary>u = x·w3ᵀ: [R, H].</summary>
    internal Tensor Up { get; }

    /// <summary>a = silu(g) ⊙ u: [R, H].</summary>
    internal Tensor Activation { get; }

    /// <summary>Rows of each expert, expert-major (one entry for the shared expert).</summary>
    internal long[] RowsPerExpert { get; }

    /// <summary>g, u and a: the working tensors only the backward reads.</summary>
    internal Tensor[] SavedActivations => [Gate, Up, Activation];
}
