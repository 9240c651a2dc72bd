using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// <see cref="IGemmKernels"/> on host tensors through <see cref="HostGemm"/>: row-invariant fused multiply-add chains
/// in ascending reduction order, so every product is bitwise deterministic; grouped products run the experts side by
/// side.
/// </summary>
public sealed class HostGemmKernels : IGemmKernels
{
    /// <summary>The one instance (the kernels have no state).</summary>
    public static HostGemmKernels Instance { get; } = new();

    private HostGemmKernels() { }

    /// <inheritdoc />
    /// <remarks><see cref="HostGemm"/>'s fused multiply-add chains run in ascending reduction order.</remarks>
    public bool ContinuesReductionChain => true;

    /// <inheritdoc />
    public void MatMulTransposeB(
        MatrixOperand a,
        MatrixOperand b,
        MatrixOperand c,
        GemmShape shape,
        bool accumulate = false
    ) =>
        HostGemm.MatMulTransposeB(
            a.HostSpan(shape.K, (long)shape.M * shape.K),
            b.HostSpan((long)shape.N * shape.K, (long)shape.N * shape.K),
            c.HostSpan(shape.N, (long)shape.M * shape.N),
            shape.M,
            shape.N,
            shape.K,
            accumulate
        );

    /// <inheritdoc />
    public void MatMul(MatrixOperand a, MatrixOperand b, MatrixOperand c, GemmShape shape, bool accumulate = false) =>
        HostGemm.MatMul(
            a.HostSpan(shape.K, (long)shape.M * shape.K),
            b.HostSpan((long)shape.K * shape.N, (long)shape.K * shape.N),
            c.HostSpan(shape.N, (long)shape.M * shape.N),
            shape.M,
            shape.N,
            shape.K,
            accumulate
        );

    /// <inheritdoc />
    public void MatMulTransposeA(
        MatrixOperand a,
        MatrixOperand b,
        MatrixOperand c,
        GemmShape shape,
        bool accumulate = false
    ) =>
        HostGemm.MatMulTransposeA(
            a.HostSpan(shape.M, (long)shape.K * shape.M),
            b.HostSpan(shape.N, (long)shape.K * shape.N),
            c.HostSpan((long)shape.M * shape.N, (long)shape.M * shape.N),
            shape.M,
            shape.N,
            shape.K,
            accumulate
        );

    /// <inheritdoc />
    /// <remarks>The experts run side by side (see <see cref="ForEachGroup"/>); each product is the same as
    /// alone.</remarks>
    public void GroupedMatMulTransposeB(
        Tensor a,
        Tensor b,
        Tensor c,
        ReadOnlySpan<long> rowsPerGroup,
        int n,
        int k,
        bool accumulate = false
    ) =>
        ForEachGroup(
            rowsPerGroup,
            (g, start, rows, threads) =>
                HostGemm.MatMulTransposeB(
                    RowBlock(a, start, rows, k),
                    Matrix(b, g, n * k),
                    RowBlock(c, start, rows, n),
                    rows,
                    n,
                    k,
                    accumulate,
                    threads
                )
        );

    /// <inheritdoc />
    /// <remarks>The experts run side by side (see <see cref="ForEachGroup"/>).</remarks>
    public void GroupedMatMul(
        Tensor a,
        Tensor b,
        Tensor c,
        ReadOnlySpan<long> rowsPerGroup,
        int n,
        int k,
        bool accumulate = false
    ) =>
        ForEachGroup(
            rowsPerGroup,
            (g, start, rows, threads) =>
                HostGemm.MatMul(
                    RowBlock(a, start, rows, k),
                    Matrix(b, g, k * n),
                    RowBlock(c, start, rows, n),
                    rows,
                    n,
                    k,
                    accumulate,
                    threads
                )
        );

    /// <inheritdoc />
    /// <remarks>The experts run side by side (see <see cref="ForEachGroup"/>); each writes only its own
    /// <c>C[g]</c>.</remarks>
    public void GroupedMatMulTransposeA(
        Tensor a,
        Tensor b,
        Tensor c,
        ReadOnlySpan<long> rowsPerGroup,
        int m,
        int n,
        bool accumulate = false
    ) =>
        ForEachGroup(
            rowsPerGroup,
            (g, start, rows, threads) =>
                HostGemm.MatMulTransposeA(
                    RowBlock(a, start, rows, m),
                    RowBlock(b, start, rows, n),
                    Matrix(c, g, m * n),
                    m,
                    n,
                    rows,
                    accumulate,
                    threads
                )
        );

    /// <summary>
    /// Runs <paramref name="body"/>(group, first row, rows, threads) for every group with rows: one fork over all the
    /// experts instead of one per expert, so small experts (a few hundred rows) keep every thread busy. With G groups
    /// on
    /// N threads each product gets about N / G threads. Every group writes its own rows (or its own matrix) and each
    /// product computes each element the same way on any number of threads, so the result is the sequential one.
    /// </summary>
    private static void ForEachGroup(ReadOnlySpan<long> rowsPerGroup, Action<int, int, int, int> body)
    {
        var groups = new List<(int Group, int Start, int Rows)>(rowsPerGroup.Length);
        int start = 0;
        for (int g = 0; g < rowsPerGroup.Length; g++)
        {
            int rows = (int)rowsPerGroup[g];
            if (rows > 0)
                groups.Add((g, start, rows));
            start += rows;
        }
        int threads = HostThreads.Current;
        if (groups.Count <= 1 || threads == 1)
        {
            foreach (var (g, s, rows) in groups)
                body(g, s, rows, threads);
            return;
        }
        int perGroup = Math.Max(1, threads / groups.Count);
        Parallel.For(
            0,
            groups.Count,
            new ParallelOptions { MaxDegreeOfParallelism = threads },
            i =>
            {
                var (g, s, rows) = groups[i];
                body(g, s, rows, perGroup);
            }
        );
    }

    private static Span<float> RowBlock(Tensor t, int row, int rows, int width) =>
        t.AsSpan<float>().Slice(row * width, rows * width);

    private static Span<float> Matrix(Tensor t, int index, int elements) =>
        t.AsSpan<float>().Slice(index * elements, elements);
}
