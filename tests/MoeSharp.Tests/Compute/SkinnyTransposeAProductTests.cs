using MoeSharp.Compute;
using MoeSharp.Testing;

namespace MoeSharp.Tests.Compute;

public sealed class SkinnyTransposeAProductTests
{
    /// <summary>Values in [-1, 1) with some +0 and −0, so the chain's signed zeros are exercised.</summary>
    private static float[] Values(Random random, int length) =>
        Enumerable
            .Range(0, length)
            .Select(_ =>
                random.Next(16) switch
                {
                    0 => 0f,
                    1 => -0f,
                    _ => (float)((random.NextDouble() * 2) - 1),
                }
            )
            .ToArray();

    public static TheoryData<int, int, int, bool> Shapes() =>
        new()
        {
            { 1, 64, 1, false },
            { 1, 1024, 8192, true },
            { 3, 128, 129, false },
            { 4, 64, 128, true },
            { 7, 192, 300, false },
            { 16, 512, 2048, false },
            { 16, 1024, 257, true },
            { 21, 256, 5, true },
            { 24, 64, 1000, false },
        };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Every_element_is_the_ascending_fused_multiply_add_chain_on_any_thread_count(
        int m,
        int n,
        int k,
        bool accumulate
    )
    {
        // The router's and the head's weight gradients take this path on AVX-512 machines (elsewhere HostGemm's): the
        // same chain as HostGemm, c = fma(a_p, b_p, c) from +0 (or C) for p ascending, whatever the blocks and threads.
        Assert.Equal(GemmMicroKernel.Wide, SkinnyTransposeAProduct.Handles(m, n));
        var random = new Random((m * 31) + n + (k * 7));
        float[] a = Values(random, k * m),
            b = Values(random, k * n),
            start = Values(random, m * n);
        var expected = new float[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                float chain = accumulate ? start[(i * n) + j] : 0f;
                for (int p = 0; p < k; p++)
                    chain = MathF.FusedMultiplyAdd(a[(p * m) + i], b[(p * n) + j], chain);
                expected[(i * n) + j] = chain;
            }
        }
        foreach (int threads in new[] { 1, 2, 5, 16 })
        {
            float[] c = (float[])start.Clone();
            HostGemm.MatMulTransposeA(a, b, c, m, n, k, accumulate, threads);
            BitwiseFloats.AssertSame(
                expected,
                c,
                at => $"element ({at / n}, {at % n}) on {threads} threads, the chain's"
            );
        }
    }

    [Theory]
    [InlineData(0, 64)]
    [InlineData(25, 64)]
    [InlineData(16, 63)]
    [InlineData(16, 96)]
    public void Other_shapes_stay_with_the_general_product(int m, int n) =>
        Assert.False(SkinnyTransposeAProduct.Handles(m, n));
}
