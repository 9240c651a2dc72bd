using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Experts;

/// <summary>
/// The shared expert: a dense SwiGLU applied to every token, <c>y = (silu(x·w1ᵀ) ⊙ (x·w3ᵀ)) · w2ᵀ</c>
/// (torchtitan's <c>shared_experts</c> with one expert). Same math as <see cref="GroupedExperts"/>.
/// </summary>
public sealed class SharedExpert
{
    private readonly GroupedExperts _single;

    /// <summary>Creates a shared expert with zero weights.</summary>
    /// <param name="dim">D, the model dimension.</param>
    /// <param name="hidden">Hs, the shared expert's hidden dimension.</param>
    /// <param name="kernels">Where the weights live and the products run; the host when null.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public SharedExpert(int dim, int hidden, ILayerKernels? kernels = null)
    {
        _single = new GroupedExperts(1, dim, hidden, kernels);
        // Views of the single expert's storage, without the leading expert axis.
        W1 = _single.W1.Reshape(hidden, dim);
        W2 = _single.W2.Reshape(dim, hidden);
        W3 = _single.W3.Reshape(hidden, dim);
    }

    /// <summary>D, the model dimension: the length of an input and an output row.</summary>
    public int Dim => _single.Dim;

    /// <summary>Hs, the shared expert's hidden dimension.</summary>
    public int Hidden => _single.Hidden;

    /// <summary>Gate projection: [Hs, D] float32.</summary>
    public Tensor W1 { get; }

    /// <summary>Down projection: [D, Hs] float32.</summary>
    public Tensor W2 { get; }

    /// <summary>Up projection: [Hs, D] float32.</summary>
    public Tensor W3 { get; }

    /// <summary>Applies the shared expert to every token.</summary>
    /// <param name="x">[T, D] float32 (kept by reference for the backward).</param>
    /// <returns>y [T, D] and the saved activations.</returns>
    /// <exception cref="ArgumentException">Wrong shape or dtype.</exception>
    public SwiGluForwardResult Forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.DType != DType.Float32 || x.Rank != 2 || x.Dim(1) != Dim)
        {
            throw new ArgumentException($"x must be float32 [T, {Dim}] but is {x}", nameof(x));
        }
        return _single.Forward(x, [x.Dim(0)]);
    }

    /// <summary>Gradients of x and of the shared expert's weights.</summary>
    /// <param name="forward">The result of <see cref="Forward"/>.</param>
    /// <param name="gradOutput">dy: [T, D] float32.</param>
    /// <returns>dx [T, D], dw1 [Hs, D], dw2 [D, Hs], dw3 [Hs, D].</returns>
    /// <exception cref="ArgumentException">A shape is wrong.</exception>
    public SwiGluGradients Backward(SwiGluForwardResult forward, Tensor gradOutput) =>
        Backward(forward, gradOutput, null);

    /// <summary>
    /// Gradients of x and of the weights; the weight gradients continue the reduction over tokens from the
    /// values in <paramref name="accumulateInto"/> (updated in place) when given. Accumulating consecutive
    /// token blocks in order gives the same bits as one call on all tokens (one FMA chain per element).
    /// </summary>
    /// <param name="forward">The result of <see cref="Forward"/>.</param>
    /// <param name="gradOutput">dy: [T, D] float32.</param>
    /// <param name="accumulateInto">
    /// Running weight gradients (GradW1 [Hs, D], GradW2 [D, Hs], GradW3 [Hs, D]), or null to start from zero.
    /// </param>
    /// <returns>dx [T, D] and the weight gradients (the tensors of <paramref name="accumulateInto"/> when
    /// given).</returns>
    /// <exception cref="ArgumentException">A shape is wrong.</exception>
    public SwiGluGradients Backward(
        SwiGluForwardResult forward,
        Tensor gradOutput,
        SwiGluWeightGradients? accumulateInto
    )
    {
        SwiGluWeightGradients? running = null;
        if (accumulateInto is not null)
        {
            CheckShape(accumulateInto.GradW1, Hidden, Dim);
            CheckShape(accumulateInto.GradW2, Dim, Hidden);
            CheckShape(accumulateInto.GradW3, Hidden, Dim);
            running = accumulateInto.Reshape([1, Hidden, Dim], [1, Dim, Hidden]);
        }
        SwiGluGradients g = _single.Backward(forward, gradOutput, running);
        SwiGluWeightGradients weights = g.Weights.Reshape([Hidden, Dim], [Dim, Hidden]);
        return new SwiGluGradients(g.GradX, weights.GradW1, weights.GradW2, weights.GradW3);
    }

    private static void CheckShape(Tensor tensor, int rows, int columns)
    {
        ArgumentNullException.ThrowIfNull(tensor, "accumulateInto");
        if (tensor.DType != DType.Float32 || tensor.Rank != 2 || tensor.Dim(0) != rows || tensor.Dim(1) != columns)
        {
            throw new ArgumentException(
                $"accumulateInto holds {tensor}, expected float32 [{rows}, {columns}]",
                "accumulateInto"
            );
        }
    }
}
