using MoeSharp.Compute;
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

    /// <summary>A result of the padded experts (<see cref="IPaddedExpertKernels"/>): <see cref="Gate"/> and
    /// <see cref="Up"/> are both the stacked gate-and-up products, <see cref="Activation"/> the padded bfloat16
    /// activation.</summary>
    internal SwiGluForwardResult(Tensor output, Tensor input, PaddedExpertsState padded, long[] rowsPerExpert)
        : this(output, input, padded.GateUp, padded.GateUp, padded.Activation, rowsPerExpert) => Padded = padded;

    /// <summary>What the padded experts' backward reads; null for a product-by-product forward.</summary>
    internal PaddedExpertsState? Padded { get; }

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
    internal Tensor[] SavedActivations => Padded?.Tensors ?? [Gate, Up, Activation];
}
