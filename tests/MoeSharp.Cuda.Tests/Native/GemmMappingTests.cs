using CsCheck;
using MoeSharp.Cuda.Cublas;
using MoeSharp.Cuda.Native;

namespace MoeSharp.Cuda.Tests.Native;

/// <summary>
/// The row-major ↔ column-major mapping: the cuBLAS parameters, interpreted the way cuBLAS does (column-major
/// buffers, op per trans flag), on the row-major buffers, give the row-major <c>C = A·Bᵀ</c>.
/// </summary>
public class GemmMappingTests
{
    /// <summary>
    /// A column-major GEMM as cuBLAS defines it: <c>C[i + j·ldc] = Σ_p op(A)[i, p] · op(B)[p, j]</c>.
    /// </summary>
    internal static void ColumnMajorReference(
        in ColumnMajorGemm g,
        ReadOnlySpan<double> a,
        ReadOnlySpan<double> b,
        Span<double> c
    )
    {
        for (int j = 0; j < g.N; j++)
        for (int i = 0; i < g.M; i++)
        {
            double sum = 0;
            for (int p = 0; p < g.K; p++)
            {
                double av = g.TransA == CublasConstants.OpN ? a[i + p * g.Lda] : a[p + i * g.Lda];
                double bv = g.TransB == CublasConstants.OpN ? b[p + j * g.Ldb] : b[j + p * g.Ldb];
                sum += av * bv;
            }
            c[i + j * g.Ldc] = sum;
        }
    }

    [Fact]
    public void Parameters_ForTheExpertLayout()
    {
        ColumnMajorGemm g = ColumnMajorGemm.ForRowMajorTimesTransposed(rows: 5, n: 3, k: 7);
        Assert.Equal(
            new ColumnMajorGemm(
                CublasConstants.OpT,
                CublasConstants.OpN,
                M: 3,
                N: 5,
                K: 7,
                Lda: 7,
                Ldb: 7,
                Ldc: 3,
                SwapOperands: true
            ),
            g
        );
    }

    [Fact]
    public void ColumnMajorMapping_OnRowMajorBuffers_EqualsRowMajorATimesBTransposed()
    {
        Gen.Select(Gen.Int[0, 9], Gen.Int[1, 9], Gen.Int[1, 9], Gen.Int)
            .Sample(
                (rows, n, k, seed) =>
                {
                    var random = new Random(seed);
                    // A [rows, k]
                    double[] a = Enumerable.Range(0, rows * k).Select(_ => random.NextDouble() - 0.5).ToArray();
                    // B [n, k]
                    double[] b = Enumerable.Range(0, n * k).Select(_ => random.NextDouble() - 0.5).ToArray();
                    var expected = new double[rows * n];
                    for (int r = 0; r < rows; r++)
                    for (int j = 0; j < n; j++)
                    {
                        double sum = 0;
                        for (int p = 0; p < k; p++)
                            sum += a[r * k + p] * b[j * k + p];
                        expected[r * n + j] = sum;
                    }

                    ColumnMajorGemm g = ColumnMajorGemm.ForRowMajorTimesTransposed(rows, n, k);
                    var c = new double[rows * n];
                    // SwapOperands: cuBLAS's A is the weight buffer, its B the activation buffer.
                    ColumnMajorReference(g, g.SwapOperands ? b : a, g.SwapOperands ? a : b, c);
                    for (int i = 0; i < c.Length; i++)
                        Assert.Equal(expected[i], c[i], 12);
                }
            );
    }

    [Fact]
    public void TheLayersOtherMappings_OnRowMajorBuffers_EqualATimesB_AndATransposedTimesB()
    {
        Gen.Select(Gen.Int[0, 9], Gen.Int[1, 9], Gen.Int[1, 9], Gen.Int)
            .Sample(
                (rows, n, k, seed) =>
                {
                    var random = new Random(seed);
                    double[] Random(int length) =>
                        Enumerable.Range(0, length).Select(_ => random.NextDouble() - 0.5).ToArray();

                    // C[rows, n] = A[rows, k] · B[k, n]
                    double[] a = Random(rows * k),
                        b = Random(k * n);
                    var expected = new double[rows * n];
                    for (int r = 0; r < rows; r++)
                    for (int j = 0; j < n; j++)
                    for (int p = 0; p < k; p++)
                        expected[r * n + j] += a[r * k + p] * b[p * n + j];
                    AssertMapping(ColumnMajorGemm.ForRowMajorTimes(rows, n, k), a, b, expected);

                    // C[m, n] = A[k, m]ᵀ · B[k, n], with m = rows (as m ≥ 1 only when rows ≥ 1)
                    if (rows == 0)
                        return;
                    int m = rows;
                    double[] at = Random(k * m),
                        bt = Random(k * n);
                    var expectedT = new double[m * n];
                    for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    for (int p = 0; p < k; p++)
                        expectedT[i * n + j] += at[p * m + i] * bt[p * n + j];
                    AssertMapping(ColumnMajorGemm.ForRowMajorTransposedTimes(m, n, k), at, bt, expectedT);
                }
            );

        static void AssertMapping(ColumnMajorGemm g, double[] a, double[] b, double[] expected)
        {
            var c = new double[expected.Length];
            ColumnMajorReference(g, g.SwapOperands ? b : a, g.SwapOperands ? a : b, c);
            for (int i = 0; i < c.Length; i++)
                Assert.Equal(expected[i], c[i], 12);
        }
    }

    [Fact]
    public void BadShapes_AreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ColumnMajorGemm.ForRowMajorTimesTransposed(-1, 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => ColumnMajorGemm.ForRowMajorTimesTransposed(1, 0, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => ColumnMajorGemm.ForRowMajorTimesTransposed(1, 2, 0));
    }

    [Fact]
    public void ExpertPlan_SkipsEmptyExperts_AndOffsetsFollowTheGroupedLayout()
    {
        ExpertGemm[] plan = ExpertGemm.Plan([3, 0, 2, 4], n: 5, k: 6, inputElementSize: 2, outputElementSize: 4);
        Assert.Equal(
            [
                new ExpertGemm(0, 3, 0, 0, 0),
                new ExpertGemm(2, 2, 3L * 6 * 2, 2L * 5 * 6 * 2, 3L * 5 * 4),
                new ExpertGemm(3, 4, 5L * 6 * 2, 3L * 5 * 6 * 2, 5L * 5 * 4),
            ],
            plan
        );
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpertGemm.Plan([1, -1], 2, 2, 2, 4));
    }
}
