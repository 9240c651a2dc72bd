namespace MoeSharp.Cuda.Cublas;

/// <summary>
/// Where each local expert's GEMM reads and writes in the grouped layout: routed rows expert-major
/// (<c>A [Σ m_e, K]</c>, expert e's rows from <c>Σ_{f&lt;e} m_f</c>), weights <c>[E, N, K]</c>, output <c>[Σ m_e,
/// N]</c>.
/// </summary>
/// <param name="Expert">Local expert index.</param>
/// <param name="Rows">Its rows <c>m_e</c> (experts with none are left out of the plan).</param>
/// <param name="AOffsetBytes">Byte offset of its first routed row.</param>
/// <param name="BOffsetBytes">Byte offset of its weight matrix.</param>
/// <param name="COffsetBytes">Byte offset of its first output row.</param>
internal readonly record struct ExpertGemm(
    int Expert,
    int Rows,
    long AOffsetBytes,
    long BOffsetBytes,
    long COffsetBytes
)
{
    /// <summary>
    /// One entry per expert with rows, in expert order. <paramref name="inputElementSize"/> is the A/B element size
    /// (2 for bfloat16, 4 for float32), <paramref name="outputElementSize"/> C's (4: float32).
    /// </summary>
    public static ExpertGemm[] Plan(
        ReadOnlySpan<int> rowsPerExpert,
        int n,
        int k,
        int inputElementSize,
        int outputElementSize
    )
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        var plan = new List<ExpertGemm>(rowsPerExpert.Length);
        long rowStart = 0;
        for (int e = 0; e < rowsPerExpert.Length; e++)
        {
            int m = rowsPerExpert[e];
            if (m < 0)
                throw new ArgumentOutOfRangeException(nameof(rowsPerExpert), m, $"expert {e} has a negative row count");
            if (m > 0)
                plan.Add(
                    new ExpertGemm(
                        e,
                        m,
                        rowStart * k * inputElementSize,
                        (long)e * n * k * inputElementSize,
                        rowStart * n * outputElementSize
                    )
                );
            rowStart += m;
        }
        return [.. plan];
    }
}
