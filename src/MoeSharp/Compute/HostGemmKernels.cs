using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// <see cref="IGemmKernels"/> on host tensors through <see cref="HostGemm"/>: row-invariant fused multiply-add chains
/// in ascending reduction order, so every product is bitwise deterministic; grouped products run all experts' blocks in
/// one parallel pass.
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
    /// <remarks>All experts' blocks in one parallel pass (<see cref="HostGemm.GroupedMatMulTransposeB"/>); each
    /// product is bitwise the same as alone.</remarks>
    public void GroupedMatMulTransposeB(
        Tensor a,
        Tensor b,
        Tensor c,
        ReadOnlySpan<long> rowsPerGroup,
        int n,
        int k,
        bool accumulate = false
    ) =>
        HostGemm.GroupedMatMulTransposeB(
            a.AsSpan<float>(),
            b.AsSpan<float>(),
            c.AsSpan<float>(),
            rowsPerGroup,
            n,
            k,
            accumulate
        );

    /// <inheritdoc />
    /// <remarks>All experts' blocks in one parallel pass (<see cref="HostGemm.GroupedMatMul"/>).</remarks>
    public void GroupedMatMul(
        Tensor a,
        Tensor b,
        Tensor c,
        ReadOnlySpan<long> rowsPerGroup,
        int n,
        int k,
        bool accumulate = false
    ) =>
        HostGemm.GroupedMatMul(a.AsSpan<float>(), b.AsSpan<float>(), c.AsSpan<float>(), rowsPerGroup, n, k, accumulate);

    /// <inheritdoc />
    /// <remarks>All experts' blocks in one parallel pass (<see cref="HostGemm.GroupedMatMulTransposeA"/>); each writes
    /// only its own <c>C[g]</c>.</remarks>
    public void GroupedMatMulTransposeA(
        Tensor a,
        Tensor b,
        Tensor c,
        ReadOnlySpan<long> rowsPerGroup,
        int m,
        int n,
        bool accumulate = false
    ) =>
        HostGemm.GroupedMatMulTransposeA(
            a.AsSpan<float>(),
            b.AsSpan<float>(),
            c.AsSpan<float>(),
            rowsPerGroup,
            m,
            n,
            accumulate
        );
}
