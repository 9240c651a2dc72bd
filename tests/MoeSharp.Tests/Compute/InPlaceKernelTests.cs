using MoeSharp.Compute;
using MoeSharp.Testing;

namespace MoeSharp.Tests.Compute;

/// <summary>
/// <see cref="GemmMicroKernel.Kernel512Strided"/>, which reads A where it lies, against
/// <see cref="GemmMicroKernel.Kernel512"/> on the same values packed: the same chains, so every element bitwise, in
/// both layouts it serves.
/// </summary>
public sealed unsafe class InPlaceKernelTests
{
    private const int Rows = 12,
        Columns = 32,
        Ldc = 40;

    [WideKernelTheory]
    [InlineData(false, 1, false)]
    [InlineData(false, 2, true)]
    [InlineData(false, 7, false)]
    [InlineData(false, 384, true)]
    [InlineData(false, 385, false)]
    [InlineData(true, 1, true)]
    [InlineData(true, 2, false)]
    [InlineData(true, 7, true)]
    [InlineData(true, 384, false)]
    [InlineData(true, 385, true)]
    public void Reading_A_in_place_runs_the_packed_kernels_chains(bool transposed, int depth, bool load)
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
        float[] b = RandomFloats.Uniform(random, depth * Columns);
        float[] start = RandomFloats.Uniform(random, Rows * Ldc);
        float[] expected = (float[])start.Clone(),
            actual = (float[])start.Clone();
        fixed (
            float* pa = a,
                pPacked = packedA,
                pb = b,
                pe = expected,
                pc = actual
        )
        {
            GemmMicroKernel.Kernel512(depth, pPacked, pb, pe, Ldc, load);
            GemmMicroKernel.Kernel512Strided(depth, pa, rowStride, stepStride, pb, pc, Ldc, load);
        }
        BitwiseFloats.AssertSame(
            expected,
            actual,
            i => $"row {i / Ldc}, column {i % Ldc}, read in place against packed"
        );
    }
}
