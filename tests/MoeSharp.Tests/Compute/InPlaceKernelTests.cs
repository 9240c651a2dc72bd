using MoeSharp.Compute;
using MoeSharp.Testing;

namespace MoeSharp.Tests.Compute;

/// <summary>
/// <see cref="GemmMicroKernel.Kernel512Strided"/>, which reads A (and a row-major B) where they lie, against
/// <see cref="GemmMicroKernel.Kernel512"/> and <see cref="GemmMicroKernel.EdgeKernel"/> on the same values packed: the
/// same chains, so every element bitwise, in every layout it serves.
/// </summary>
public sealed unsafe class InPlaceKernelTests
{
    private const int Rows = 12,
        Columns = 32,
        Ldc = 40;

    [WideKernelTheory]
    [InlineData(false, 1, false, Columns)]
    [InlineData(false, 2, true, Columns)]
    [InlineData(false, 7, false, Columns)]
    [InlineData(false, 384, true, Columns)]
    [InlineData(false, 385, false, Columns)]
    [InlineData(true, 1, true, Columns)]
    [InlineData(true, 2, false, Columns)]
    [InlineData(true, 7, true, Columns)]
    [InlineData(true, 384, false, Columns)]
    [InlineData(true, 385, true, Columns)]
    [InlineData(false, 385, true, 45)] // B where it lies too: 32 of every 45 floats, steps not 64-byte aligned
    [InlineData(true, 7, false, 45)]
    [InlineData(true, 384, true, 512)]
    public void Reading_A_in_place_runs_the_packed_kernels_chains(bool transposed, int depth, bool load, int ldb)
    {
        var random = new Random((depth * 31) + (transposed ? 1 : 0) + (load ? 2 : 0));
        // A's 12 rows among 17 (row-major: 3 floats of padding a row; transposed: 19 rows between steps).
        long rowStride = transposed ? 1 : depth + 3,
            stepStride = transposed ? 19 : 1;
        float[] a = RandomFloats.Uniform(random, transposed ? depth * 19 : Rows * (depth + 3));
        float[] packedA = new float[depth * Rows];
        for (int p = 0; p < depth; p++)
        for (int r = 0; r < Rows; r++)
            packedA[(p * Rows) + r] = a[(r * rowStride) + (p * stepStride)];
        (float[] b, float[] packedB, float[] expected, float[] actual) = BAndC(random, depth, ldb);
        fixed (
            float* pa = a,
                pPacked = packedA,
                pb = b,
                pPackedB = packedB,
                pe = expected,
                pc = actual
        )
        {
            GemmMicroKernel.Kernel512(depth, pPacked, pPackedB, pe, Ldc, load);
            GemmMicroKernel.Kernel512Strided(Rows, depth, pa, rowStride, stepStride, pb, ldb, pc, Ldc, load);
        }
        BitwiseFloats.AssertSame(
            expected,
            actual,
            i => $"row {i / Ldc}, column {i % Ldc}, read in place against packed"
        );
    }

    /// <summary>A B of <paramref name="depth"/> steps <paramref name="ldb"/> floats apart, the same 32 columns packed,
    /// and two copies of one random C.</summary>
    private static (float[] B, float[] PackedB, float[] Expected, float[] Actual) BAndC(
        Random random,
        int depth,
        int ldb
    )
    {
        float[] b = RandomFloats.Uniform(random, depth * ldb);
        float[] packedB = new float[depth * Columns];
        for (int p = 0; p < depth; p++)
            Array.Copy(b, p * ldb, packedB, p * Columns, Columns);
        float[] start = RandomFloats.Uniform(random, Rows * Ldc);
        return (b, packedB, (float[])start.Clone(), (float[])start.Clone());
    }

    [WideKernelTheory]
    [InlineData(1, 1, false)]
    [InlineData(4, 7, true)]
    [InlineData(6, 385, false)]
    [InlineData(8, 2, true)]
    [InlineData(9, 384, true)]
    [InlineData(11, 5, false)]
    public void A_short_packed_panel_against_B_where_it_lies_runs_the_edge_kernels_chains(
        int rows,
        int depth,
        bool load
    )
    {
        // A block's last row panel, short of 12 rows and packed with zero padding, against a row-major B read in place
        // (steps 45 floats apart): every element as EdgeKernel computes it on the same values packed.
        const int ldb = 45;
        var random = new Random((rows * 1009) + depth);
        float[] values = RandomFloats.Uniform(random, depth * rows);
        float[] packedA = new float[depth * Rows];
        for (int p = 0; p < depth; p++)
            Array.Copy(values, p * rows, packedA, p * Rows, rows);
        (float[] b, float[] packedB, float[] expected, float[] actual) = BAndC(random, depth, ldb);
        fixed (
            float* pa = packedA,
                pb = b,
                pPackedB = packedB,
                pe = expected,
                pc = actual
        )
        {
            GemmMicroKernel.EdgeKernel(rows, depth, pa, pPackedB, pe, Ldc, load);
            GemmMicroKernel.Kernel512Strided(rows, depth, pa, 1, Rows, pb, ldb, pc, Ldc, load);
        }
        // Both run the same groups of rows, so even the rows past the panel's last (padding) agree.
        BitwiseFloats.AssertSame(
            expected,
            actual,
            i => $"row {i / Ldc}, column {i % Ldc} of a {rows}-row panel, B in place against packed"
        );
    }
}
