using MoeSharp.Cuda.Native;

namespace MoeSharp.Cuda.Cublas;

/// <summary>
/// The parameters of one column-major cuBLAS GEMM <c>C = op(A)·op(B)</c> (<c>m×n</c> result, inner size <c>k</c>),
/// as <c>cublasGemmEx</c> takes them. <see cref="SwapOperands"/> says that cuBLAS's A is the caller's second matrix.
/// </summary>
/// <param name="TransA"><c>CUBLAS_OP_N</c> or <c>CUBLAS_OP_T</c> for cuBLAS's A.</param>
/// <param name="TransB">Likewise for cuBLAS's B.</param>
/// <param name="M">Rows of <c>op(A)</c> and C.</param>
/// <param name="N">Columns of <c>op(B)</c> and C.</param>
/// <param name="K">Columns of <c>op(A)</c>, rows of <c>op(B)</c>.</param>
/// <param name="Lda">Leading dimension of A as stored.</param>
/// <param name="Ldb">Leading dimension of B as stored.</param>
/// <param name="Ldc">Leading dimension of C.</param>
/// <param name="SwapOperands">True when cuBLAS's A is the caller's weights and cuBLAS's B the caller's
/// activations.</param>
internal readonly record struct ColumnMajorGemm(
    int TransA,
    int TransB,
    int M,
    int N,
    int K,
    int Lda,
    int Ldb,
    int Ldc,
    bool SwapOperands
)
{
    /// <summary>
    /// Row-major <c>C[rows, n] = A[rows, k] · B[n, k]ᵀ</c> (the expert layout: activations times a weight stored
    /// <c>[out, in]</c>, e.g. <c>w1[e]: [H, D]</c>), as a column-major GEMM.
    /// </summary>
    /// <remarks>
    /// cuBLAS reads a row-major <c>[r, c]</c> buffer as the column-major <c>[c, r]</c> matrix, its transpose, with
    /// leading dimension <c>c</c>. So the C buffer is <c>Cᵀ [n, rows]</c> (ldc = n), A's buffer is <c>Aᵀ [k, rows]</c>
    /// (ld = k) and B's is <c>Bᵀ [k, n]</c> (ld = k). Since <c>Cᵀ = (A·Bᵀ)ᵀ = B·Aᵀ</c>, cuBLAS computes
    /// <c>op(B-buffer) · op(A-buffer)</c> with <c>op = T</c> on the B buffer (turning <c>Bᵀ</c> back into <c>B [n,
    /// k]</c>)
    /// and <c>op = N</c> on the A buffer (<c>Aᵀ [k, rows]</c> as stored): m = n, n = rows, k = k — no copy, no
    /// transpose kernel.
    /// </remarks>
    public static ColumnMajorGemm ForRowMajorTimesTransposed(int rows, int n, int k)
    {
        CheckSizes(rows, n, k);
        return new ColumnMajorGemm(
            TransA: CublasConstants.OpT,
            TransB: CublasConstants.OpN,
            M: n,
            N: rows,
            K: k,
            Lda: k,
            Ldb: k,
            Ldc: n,
            SwapOperands: true
        );
    }

    /// <summary>
    /// Row-major <c>C[rows, n] = A[rows, k] · B[k, n]</c> (input gradients <c>dy · W</c>) as a column-major GEMM:
    /// <c>Cᵀ = Bᵀ·Aᵀ</c>, both buffers read as stored (<c>op = N</c>): cuBLAS's A is the B buffer (ld = n), its B the A
    /// buffer (ld = k).
    /// </summary>
    public static ColumnMajorGemm ForRowMajorTimes(int rows, int n, int k)
    {
        CheckSizes(rows, n, k);
        return new ColumnMajorGemm(
            TransA: CublasConstants.OpN,
            TransB: CublasConstants.OpN,
            M: n,
            N: rows,
            K: k,
            Lda: n,
            Ldb: k,
            Ldc: n,
            SwapOperands: true
        );
    }

    /// <summary>
    /// Row-major <c>C[m, n] = A[k, m]ᵀ · B[k, n]</c> (weight gradients <c>dyᵀ · x</c>, reducing over k rows) as a
    /// column-major GEMM: <c>Cᵀ = Bᵀ·A</c>, the B buffer as stored (ld = n) and the A buffer transposed back
    /// (<c>op = T</c>, ld = m).
    /// </summary>
    public static ColumnMajorGemm ForRowMajorTransposedTimes(int m, int n, int k)
    {
        CheckSizes(m, n, k);
        return new ColumnMajorGemm(
            TransA: CublasConstants.OpN,
            TransB: CublasConstants.OpT,
            M: n,
            N: m,
            K: k,
            Lda: n,
            Ldb: m,
            Ldc: n,
            SwapOperands: true
        );
    }

    private static void CheckSizes(int rows, int n, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
    }
}
