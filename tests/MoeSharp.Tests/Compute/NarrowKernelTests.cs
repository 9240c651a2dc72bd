using MoeSharp.Compute;
using MoeSharp.Testing;

namespace MoeSharp.Tests.Compute;

/// <summary>
/// <see cref="GemmMicroKernel.Kernel128"/>, the 6 × 16 tile in 128-bit vectors that ARM64 runs, against one
/// <c>fma</c> chain per element in ascending steps (what <see cref="GemmMicroKernel.Kernel256"/> computes too): every
/// element bitwise, from zero and from C's values. Vector128's fused multiply-add is exact on every machine (FMA3 here,
/// NEON there), so this machine checks the kernel ARM64 runs.
/// </summary>
public sealed unsafe class NarrowKernelTests
{
    private const int Rows = 6,
        Columns = 16,
        Ldc = 21;

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(7, false)]
    [InlineData(256, true)]
    [InlineData(257, false)]
    public void Kernel128_RunsTheTilesFmaChains(int depth, bool load)
    {
        var random = new Random((depth * 2) + (load ? 1 : 0));
        float[] a = RandomFloats.Uniform(random, depth * Rows),
            b = RandomFloats.Uniform(random, depth * Columns),
            initial = RandomFloats.Uniform(random, Rows * Ldc);
        float[] expected = (float[])initial.Clone(),
            actual = (float[])initial.Clone(),
            wider = (float[])initial.Clone();
        for (int r = 0; r < Rows; r++)
        for (int j = 0; j < Columns; j++)
        {
            float c = load ? initial[(r * Ldc) + j] : 0f;
            for (int p = 0; p < depth; p++)
                c = MathF.FusedMultiplyAdd(a[(p * Rows) + r], b[(p * Columns) + j], c);
            expected[(r * Ldc) + j] = c;
        }
        fixed (
            float* pa = a,
                pb = b,
                pc = actual,
                pw = wider
        )
        {
            GemmMicroKernel.Kernel128(depth, pa, pb, pc, Ldc, load);
            GemmMicroKernel.Kernel256(depth, pa, pb, pw, Ldc, load);
        }
        // Columns past the tile's 16 keep their values.
        BitwiseFloats.AssertSame(expected, actual, i => $"Kernel128: row {i / Ldc}, column {i % Ldc}");
        BitwiseFloats.AssertSame(expected, wider, i => $"Kernel256: row {i / Ldc}, column {i % Ldc}");
    }

    [Fact]
    public void With_AVX_off_every_product_takes_the_128_bit_kernel()
    {
        // CI runs the GEMM tests once more with DOTNET_EnableAVX=0 to reach Kernel128 through the whole GEMM, as
        // ARM64 does; this holds that run to it.
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX") != "0")
            return;
        Assert.True(GemmMicroKernel.Narrow);
        Assert.False(GemmMicroKernel.Wide);
    }
}
