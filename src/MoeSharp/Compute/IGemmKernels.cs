using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The layer's matrix products: the linear layer, its input and weight gradients, one matrix at a time or for every
/// expert's block of rows at once. Matrices are row-major float32; each operand is a <see cref="MatrixOperand"/>
/// (a row block of an activation tensor or a matrix of a weight stack) and <see cref="GemmShape"/> gives the sizes.
/// <c>accumulate</c> adds to the output's values instead of overwriting them.
/// </summary>
/// <remarks>
/// Rounding: the host backend is bitwise deterministic and row-invariant (<see cref="HostGemm"/>'s fused multiply-add
/// chains in ascending reduction order). A GPU backend's products follow its BLAS library's blocking, so they agree
/// with the host within float32 tolerance, not bitwise.
/// </remarks>
public interface IGemmKernels
{
    /// <summary>
    /// True when <see cref="MatMulTransposeA"/> with <c>accumulate</c> continues one chain per element in ascending
    /// row order on host memory, so calls over consecutive row blocks give the bits of one call over all of them: the
    /// layer then passes weight gradients along the ranks in rank order (bitwise the same for every split) instead of
    /// summing per-rank partials. False unless a backend says so (a BLAS library's blocking has no such chain).
    /// </summary>
    bool ContinuesReductionChain => false;

    /// <summary>
    /// The linear layer <c>x · Wᵀ</c>: rows <c>[c.Offset, +M)</c> of <paramref name="c"/> (<c>[·, N]</c>) (+)= rows
    /// <c>[a.Offset, +M)</c> of <paramref name="a"/> (<c>[·, K]</c>) times the transpose of matrix <c>b.Offset</c> of
    /// <paramref name="b"/> (<c>[N, K]</c>).
    /// </summary>
    /// <param name="a">Row block of the input.</param>
    /// <param name="b">Matrix of the weight stack.</param>
    /// <param name="c">Row block of the output.</param>
    /// <param name="shape">M rows, N outputs per row, K inputs per row.</param>
    /// <param name="accumulate">Add to <paramref name="c"/> instead of overwriting it.</param>
    void MatMulTransposeB(MatrixOperand a, MatrixOperand b, MatrixOperand c, GemmShape shape, bool accumulate = false);

    /// <summary>
    /// Input gradients <c>dy · W</c>: rows <c>[c.Offset, +M)</c> of <paramref name="c"/> (<c>[·, N]</c>) (+)= rows
    /// <c>[a.Offset, +M)</c> of <paramref name="a"/> (<c>[·, K]</c>) times matrix <c>b.Offset</c> of
    /// <paramref name="b"/> (<c>[K, N]</c>).
    /// </summary>
    /// <param name="a">Row block of the output gradient.</param>
    /// <param name="b">Matrix of the weight stack.</param>
    /// <param name="c">Row block of the input gradient.</param>
    /// <param name="shape">M rows, N columns of the result, K reduced.</param>
    /// <param name="accumulate">Add to <paramref name="c"/> instead of overwriting it.</param>
    void MatMul(MatrixOperand a, MatrixOperand b, MatrixOperand c, GemmShape shape, bool accumulate = false);

    /// <summary>
    /// Weight gradients <c>dyᵀ · x</c>: matrix <c>c.Offset</c> of <paramref name="c"/> (<c>[M, N]</c>) (+)= the
    /// transpose of rows <c>[a.Offset, +K)</c> of <paramref name="a"/> (<c>[·, M]</c>) times rows
    /// <c>[b.Offset, +K)</c> of <paramref name="b"/> (<c>[·, N]</c>), reducing over the K rows (ascending on the host).
    /// </summary>
    /// <param name="a">Row block of the output gradient.</param>
    /// <param name="b">Row block of the input.</param>
    /// <param name="c">Matrix of the gradient stack.</param>
    /// <param name="shape">M × N gradient, K rows reduced.</param>
    /// <param name="accumulate">Continue from <paramref name="c"/>'s values instead of zero.</param>
    void MatMulTransposeA(MatrixOperand a, MatrixOperand b, MatrixOperand c, GemmShape shape, bool accumulate = false);

    /// <summary>
    /// <see cref="MatMulTransposeB"/> for every group of consecutive rows: the rows of group g
    /// (<paramref name="rowsPerGroup"/>, in order from row 0) times <c>b[g]ᵀ</c> into the same rows of
    /// <paramref name="c"/>. Groups without rows have no output rows. A backend may batch the groups (one cast of each
    /// operand, one launch).
    /// </summary>
    /// <param name="a">Input rows <c>[R, K]</c>, expert-major.</param>
    /// <param name="b">Weights <c>[G, N, K]</c>.</param>
    /// <param name="c">Output rows <c>[R, N]</c>.</param>
    /// <param name="rowsPerGroup">Rows of each group, summing to R.</param>
    /// <param name="n">N, the output columns.</param>
    /// <param name="k">K, the length of the reduction.</param>
    /// <param name="accumulate">Add to <paramref name="c"/>.</param>
    void GroupedMatMulTransposeB(
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
            (g, start, rows) => MatMulTransposeB(new(a, start), new(b, g), new(c, start), new(rows, n, k), accumulate)
        );

    /// <summary><see cref="MatMul"/> for every group of consecutive rows, with <c>b[g]</c> (<c>[K, N]</c>).</summary>
    /// <param name="a">Output-gradient rows <c>[R, K]</c>, expert-major.</param>
    /// <param name="b">Weights <c>[G, K, N]</c>.</param>
    /// <param name="c">Input-gradient rows <c>[R, N]</c>.</param>
    /// <param name="rowsPerGroup">Rows of each group, summing to R.</param>
    /// <param name="n">N, the output columns.</param>
    /// <param name="k">K, the length of the reduction.</param>
    /// <param name="accumulate">Add to <paramref name="c"/>.</param>
    void GroupedMatMul(
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
            (g, start, rows) => MatMul(new(a, start), new(b, g), new(c, start), new(rows, n, k), accumulate)
        );

    /// <summary>
    /// <see cref="MatMulTransposeA"/> for every group of consecutive rows into <c>c[g]</c>; groups without rows leave
    /// <c>c[g]</c> as it is.
    /// </summary>
    /// <param name="a">Output-gradient rows <c>[R, M]</c>, expert-major.</param>
    /// <param name="b">Input rows <c>[R, N]</c>, expert-major.</param>
    /// <param name="c">Gradients <c>[G, M, N]</c>.</param>
    /// <param name="rowsPerGroup">Rows of each group, summing to R.</param>
    /// <param name="m">M, the gradient rows.</param>
    /// <param name="n">N, the output columns.</param>
    /// <param name="accumulate">Continue from <paramref name="c"/>'s values.</param>
    void GroupedMatMulTransposeA(
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
            (g, start, rows) => MatMulTransposeA(new(a, start), new(b, start), new(c, g), new(m, n, rows), accumulate)
        );

    /// <summary>
    /// Calls <paramref name="body"/>(group, first row, rows) for every group that has rows, in order; the groups' rows
    /// follow each other from row 0.
    /// </summary>
    /// <param name="rowsPerGroup">Rows of each group.</param>
    /// <param name="body">Called once per group with rows.</param>
    static void ForEachGroup(ReadOnlySpan<long> rowsPerGroup, Action<int, int, int> body)
    {
        int start = 0;
        for (int g = 0; g < rowsPerGroup.Length; g++)
        {
            int rows = (int)rowsPerGroup[g];
            if (rows > 0)
                body(g, start, rows);
            start += rows;
        }
    }
}
