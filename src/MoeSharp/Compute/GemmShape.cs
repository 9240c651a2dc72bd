namespace MoeSharp.Compute;

/// <summary>
/// The size of one <see cref="IGemmKernels"/> product in BLAS terms: the output is <paramref name="M"/> ×
/// <paramref name="N"/> and every output element sums <paramref name="K"/> products. For the linear layer
/// <c>x · Wᵀ</c> M is the number of rows; for a weight gradient <c>dyᵀ · x</c> K is.
/// </summary>
/// <param name="M">Output rows.</param>
/// <param name="N">Output columns.</param>
/// <param name="K">Length of the reduction.</param>
public readonly record struct GemmShape(int M, int N, int K)
{
    /// <summary>True when the output has no element (nothing to compute or write).</summary>
    public bool IsEmpty => M == 0 || N == 0;
}
