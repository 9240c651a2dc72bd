using MoeSharp.Tensors;

namespace MoeSharp.Experts;

/// <summary>
/// torchtitan's <c>GroupedExperts</c>: the SwiGLU experts that live on this rank, applied to expert-major
/// rows (all rows of local expert 0, then expert 1, …): <c>y = (silu(x·w1ᵀ) ⊙ (x·w3ᵀ)) · w2ᵀ</c> per expert.
/// </summary>
/// <remarks>
/// Each row's output depends only on that row and its expert's weights (row-invariant GEMMs), so the
/// output does not change with the batch, the rank or the other experts' loads.
/// </remarks>
public sealed class GroupedExperts
{
    /// <summary>Creates experts with zero weights (fill <see cref="W1"/>, <see cref="W2"/>, <see cref="W3"/>).</summary>
    /// <param name="numLocalExperts">E_local.</param>
    /// <param name="dim">D.</param>
    /// <param name="hidden">H.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public GroupedExperts(int numLocalExperts, int dim, int hidden)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numLocalExperts);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hidden);
        NumLocalExperts = numLocalExperts;
        Dim = dim;
        Hidden = hidden;
        W1 = Tensor.Zeros(DType.Float32, numLocalExperts, hidden, dim);
        W2 = Tensor.Zeros(DType.Float32, numLocalExperts, dim, hidden);
        W3 = Tensor.Zeros(DType.Float32, numLocalExperts, hidden, dim);
    }

    /// <summary>E_local.</summary>
    public int NumLocalExperts { get; }

    /// <summary>D.</summary>
    public int Dim { get; }

    /// <summary>H.</summary>
    public int Hidden { get; }

    /// <summary>Gate projections: [E_local, H, D] float32.</summary>
    public Tensor W1 { get; }

    /// <summary>Down projections: [E_local, D, H] float32.</summary>
    public Tensor W2 { get; }

    /// <summary>Up projections: [E_local, H, D] float32.</summary>
    public Tensor W3 { get; }

    /// <summary>Runs every local expert on its rows.</summary>
    /// <param name="xRouted">Expert-major rows: [R, D] float32 (kept by reference for the backward).</param>
    /// <param name="tokensPerLocalExpert">[E_local] rows per local expert, summing to R (zeros allowed).</param>
    /// <returns>The output rows [R, D] and the saved activations.</returns>
    /// <exception cref="ArgumentException">A shape is wrong, a count is negative or the counts do not sum to R.</exception>
    public SwiGluForwardResult Forward(Tensor xRouted, ReadOnlySpan<long> tokensPerLocalExpert)
    {
        int rows = CheckRows(xRouted, nameof(xRouted));
        long[] counts = CheckCounts(tokensPerLocalExpert, rows);
        int h = Hidden, d = Dim;
        var gate = Tensor.Uninitialized(DType.Float32, rows, h);
        var up = Tensor.Uninitialized(DType.Float32, rows, h);
        var activation = Tensor.Uninitialized(DType.Float32, rows, h);
        var output = Tensor.Uninitialized(DType.Float32, rows, d);

        int start = 0;
        for (int e = 0; e < NumLocalExperts; e++)
        {
            int r = (int)counts[e];
            if (r == 0) continue;
            SwiGluFeedForward.Forward(
                xRouted.AsSpan<float>().Slice(start * d, r * d),
                W1.Row<float>(e), W2.Row<float>(e), W3.Row<float>(e),
                gate.AsSpan<float>().Slice(start * h, r * h),
                up.AsSpan<float>().Slice(start * h, r * h),
                activation.AsSpan<float>().Slice(start * h, r * h),
                output.AsSpan<float>().Slice(start * d, r * d),
                r, d, h);
            start += r;
        }
        return new SwiGluForwardResult(output, xRouted, gate, up, activation, counts);
    }

    /// <summary>Gradients of the input rows and of every local expert's weights.</summary>
    /// <param name="forward">The result of <see cref="Forward"/> on these experts.</param>
    /// <param name="gradOutput">dy: [R, D] float32.</param>
    /// <returns>dx [R, D] and dw1, dw2, dw3 shaped like the weights (zero for experts without rows).</returns>
    /// <exception cref="ArgumentException">A shape is wrong.</exception>
    public SwiGluGradients Backward(SwiGluForwardResult forward, Tensor gradOutput) => Backward(forward, gradOutput, null);

    /// <summary>
    /// <see cref="Backward(SwiGluForwardResult, Tensor)"/>; when <paramref name="accumulateInto"/> is given,
    /// the weight gradients continue the reduction over rows from its GradW1/2/3 (updated in place and
    /// returned) instead of starting from zero.
    /// </summary>
    internal SwiGluGradients Backward(SwiGluForwardResult forward, Tensor gradOutput, SwiGluGradients? accumulateInto)
    {
        ArgumentNullException.ThrowIfNull(forward);
        if (forward.RowsPerExpert.Length != NumLocalExperts || forward.Gate.Rank != 2 || forward.Gate.Dim(1) != Hidden)
        {
            throw new ArgumentException("forward was produced by experts of another shape", nameof(forward));
        }
        int rows = forward.Input.Dim(0);
        CheckGrad(gradOutput, rows, nameof(gradOutput));
        int h = Hidden, d = Dim;
        var gradX = Tensor.Uninitialized(DType.Float32, rows, d);
        var gradW1 = accumulateInto?.GradW1 ?? Tensor.Zeros(DType.Float32, NumLocalExperts, h, d);
        var gradW2 = accumulateInto?.GradW2 ?? Tensor.Zeros(DType.Float32, NumLocalExperts, d, h);
        var gradW3 = accumulateInto?.GradW3 ?? Tensor.Zeros(DType.Float32, NumLocalExperts, h, d);
        long maxRows = forward.RowsPerExpert.Length == 0 ? 0 : forward.RowsPerExpert.Max();
        var scratch = new float[checked(3 * (int)maxRows * h)];

        int start = 0;
        for (int e = 0; e < NumLocalExperts; e++)
        {
            int r = (int)forward.RowsPerExpert[e];
            if (r == 0) continue;
            SwiGluFeedForward.Backward(
                forward.Input.AsSpan<float>().Slice(start * d, r * d),
                forward.Gate.AsSpan<float>().Slice(start * h, r * h),
                forward.Up.AsSpan<float>().Slice(start * h, r * h),
                forward.Activation.AsSpan<float>().Slice(start * h, r * h),
                gradOutput.AsSpan<float>().Slice(start * d, r * d),
                W1.Row<float>(e), W2.Row<float>(e), W3.Row<float>(e),
                gradX.AsSpan<float>().Slice(start * d, r * d),
                gradW1.Row<float>(e), gradW2.Row<float>(e), gradW3.Row<float>(e),
                scratch.AsSpan(0, 3 * r * h), r, d, h, accumulateWeights: accumulateInto is not null);
            start += r;
        }
        return new SwiGluGradients(gradX, gradW1, gradW2, gradW3);
    }

    private int CheckRows(Tensor x, string name)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        if (x.DType != DType.Float32 || x.Rank != 2 || x.Dim(1) != Dim)
        {
            throw new ArgumentException($"{name} must be float32 [R, {Dim}] but is {x}", name);
        }
        return x.Dim(0);
    }

    private void CheckGrad(Tensor grad, int rows, string name)
    {
        ArgumentNullException.ThrowIfNull(grad, name);
        if (grad.DType != DType.Float32 || grad.Rank != 2 || grad.Dim(0) != rows || grad.Dim(1) != Dim)
        {
            throw new ArgumentException($"{name} must be float32 [{rows}, {Dim}] but is {grad}", name);
        }
    }

    private long[] CheckCounts(ReadOnlySpan<long> counts, int rows)
    {
        if (counts.Length != NumLocalExperts)
        {
            throw new ArgumentException(
                $"tokensPerLocalExpert has {counts.Length} entries but there are {NumLocalExperts} local experts",
                "tokensPerLocalExpert");
        }
        long total = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            if (counts[e] < 0)
            {
                throw new ArgumentOutOfRangeException("tokensPerLocalExpert", counts[e], $"negative row count for local expert {e}");
            }
            total += counts[e];
        }
        if (total != rows)
        {
            throw new ArgumentException($"tokensPerLocalExpert sums to {total} but xRouted has {rows} rows", "tokensPerLocalExpert");
        }
        return counts.ToArray();
    }
}
