using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Testing;

namespace MoeSharp.Tests.Compute;

/// <summary>
/// The grouped products (all experts in one parallel pass) are bitwise the per-group products, whatever the group
/// sizes, thread counts and waves.
/// </summary>
public sealed class HostGroupedGemmTests
{
    private static void AssertBitwise(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what) =>
        BitwiseFloats.AssertSame(expected, actual, i => $"{what}: element {i}, against each group alone");

    /// <summary>Checks the three grouped products against one single product per group.</summary>
    private static void CheckAllThree(long[] rows, int n, int k, int seed, int threads)
    {
        var random = new Random(seed);
        int g = rows.Length;
        int total = (int)rows.Sum();
        float[] x = RandomFloats.Uniform(random, total * k),
            wNk = RandomFloats.Uniform(random, g * n * k),
            dy = RandomFloats.Uniform(random, total * n);
        var y = RandomFloats.Uniform(random, total * n);
        var expectedY = (float[])y.Clone();
        var gradW = RandomFloats.Uniform(random, g * n * k);
        var expectedGradW = (float[])gradW.Clone();
        bool accumulate = seed % 2 == 1;

        HostGemm.GroupedMatMulTransposeB(x, wNk, y, rows, n, k, accumulate, threads);
        HostGemm.GroupedMatMulTransposeA(dy, x, gradW, rows, n, k, accumulate, threads);
        int start = 0;
        for (int e = 0; e < g; e++)
        {
            int r = (int)rows[e];
            if (r > 0)
            {
                HostGemm.MatMulTransposeB(
                    x.AsSpan(start * k, r * k),
                    wNk.AsSpan(e * n * k, n * k),
                    expectedY.AsSpan(start * n, r * n),
                    r,
                    n,
                    k,
                    accumulate,
                    1
                );
                HostGemm.MatMulTransposeA(
                    dy.AsSpan(start * n, r * n),
                    x.AsSpan(start * k, r * k),
                    expectedGradW.AsSpan(e * n * k, n * k),
                    n,
                    k,
                    r,
                    accumulate,
                    1
                );
            }
            start += r;
        }
        AssertBitwise(expectedY, y, $"A·Bᵀ rows [{string.Join(", ", rows)}] n {n} k {k} on {threads} threads");
        AssertBitwise(expectedGradW, gradW, $"Aᵀ·B rows [{string.Join(", ", rows)}] on {threads} threads");

        // A·B with B[g] as [K, N] (the same weights read the other way).
        var dx = RandomFloats.Uniform(random, total * k);
        var expectedDx = (float[])dx.Clone();
        HostGemm.GroupedMatMul(dy, wNk, dx, rows, k, n, accumulate, threads);
        start = 0;
        for (int e = 0; e < g; e++)
        {
            int r = (int)rows[e];
            if (r > 0)
            {
                HostGemm.MatMul(
                    dy.AsSpan(start * n, r * n),
                    wNk.AsSpan(e * n * k, n * k),
                    expectedDx.AsSpan(start * k, r * k),
                    r,
                    k,
                    n,
                    accumulate,
                    1
                );
            }
            start += r;
        }
        AssertBitwise(expectedDx, dx, $"A·B rows [{string.Join(", ", rows)}] on {threads} threads");
    }

    [Fact]
    public void Grouped_products_are_bitwise_the_products_of_each_group_alone()
    {
        Gen.Select(Gen.Long[0, 70].Array[1, 7], Gen.Int[1, 80], Gen.Int[1, 300], Gen.Int[0, 1000])
            .Sample(
                (rows, n, k, seed) =>
                {
                    foreach (int threads in new[] { 1, 2, 5 })
                        CheckAllThree(rows, n, k, seed, threads);
                },
                iter: 25
            );
    }

    [Fact]
    public void Groups_whose_packed_panels_exceed_the_kept_scratch_run_in_waves_with_the_same_bits()
    {
        // Four groups of 1024 x 1100 weights pack 17 MiB of B, more than a thread keeps: A·Bᵀ, 1100 steps deep (past
        // the private grid), runs in at least two waves of the shared pass (A·B, 1024 deep, takes the private grid).
        CheckAllThree([3, 0, 17, 9, 12], 1024, 1100, 7, 3);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    public void Groups_too_large_for_one_wave_but_at_most_1024_deep_take_the_private_grid_with_the_same_bits(
        int threads
    )
    {
        // 1024 x 1024 weights, 1024 steps deep, for A·Bᵀ and A·B; Aᵀ·B reduces over 550-610 rows with A's steps 4 KiB
        // apart (packed, not read in place). Every product's packed panels together exceed the kept scratch. A wave of
        // the shared pass would hold about 48 blocks of A·Bᵀ or A·B (6 per thread on 8, 3 on 16: the private grid) and
        // about 109 of Aᵀ·B (14 per thread on 8: the shared pass; 7 on 16: the private grid).
        CheckAllThree([600, 0, 580, 610, 550], 1024, 1024, threads, threads);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Blocks_of_a_product_another_thread_owns_are_taken_at_the_end_with_the_same_bits(int threads)
    {
        // Seven products, at least two per thread, so each is owned by one thread, largest first. The 700-row group's
        // products have three row blocks or more and reduce over two chunks (500 and 700 steps), and the others are
        // small: the threads that own them run out of products long before the first owner is done, and take its
        // blocks, packing the chunks of its panels that nobody has yet.
        for (int seed = 0; seed < 3; seed++)
            CheckAllThree([700, 3, 9, 4, 2, 5, 1], 300, 500, seed, threads);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Products_of_three_column_blocks_pack_A_once_and_keep_every_chain(int threads)
    {
        // N = 600 is three 256-column blocks, so A is packed once beside B instead of by each task.
        const int m = 30,
            n = 600,
            k = 140;
        var random = new Random(threads);
        float[] a = RandomFloats.Uniform(random, m * k),
            b = RandomFloats.Uniform(random, n * k);
        var c = new float[m * n];
        HostGemm.MatMulTransposeB(a, b, c, m, n, k, maxDegreeOfParallelism: threads);
        AssertChains(c, m, n, k, (i, p) => a[(i * k) + p], (p, j) => b[(j * k) + p], "A·Bᵀ");
        HostGemm.MatMul(a, b, c, m, n, k, maxDegreeOfParallelism: threads);
        AssertChains(c, m, n, k, (i, p) => a[(i * k) + p], (p, j) => b[(p * n) + j], "A·B");
        HostGemm.MatMulTransposeA(a, b, c, m, n, k, maxDegreeOfParallelism: threads);
        AssertChains(c, m, n, k, (i, p) => a[(p * m) + i], (p, j) => b[(p * n) + j], "Aᵀ·B");
    }

    /// <summary>Every element is the ascending fused multiply-add chain from zero, bitwise.</summary>
    private static void AssertChains(
        float[] c,
        int m,
        int n,
        int k,
        Func<int, int, float> a,
        Func<int, int, float> b,
        string what
    )
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                float chain = 0f;
                for (int p = 0; p < k; p++)
                    chain = MathF.FusedMultiplyAdd(a(i, p), b(p, j), chain);
                if (BitConverter.SingleToInt32Bits(chain) != BitConverter.SingleToInt32Bits(c[(i * n) + j]))
                    Assert.Fail($"{what}: C[{i}, {j}] is {c[(i * n) + j]}, the chain {chain}");
            }
        }
    }

    [Fact]
    public void Empty_groups_leave_their_weight_gradient_as_it_is()
    {
        var random = new Random(1);
        float[] a = RandomFloats.Uniform(random, 4 * 3),
            b = RandomFloats.Uniform(random, 4 * 2);
        var c = Enumerable.Repeat(7f, 3 * 3 * 2).ToArray();
        HostGemm.GroupedMatMulTransposeA(a, b, c, [4, 0, 0], 3, 2);
        Assert.All(c.AsSpan(6).ToArray(), v => Assert.Equal(7f, v));
        Assert.Contains(c.AsSpan(0, 6).ToArray(), v => v != 7f);
    }

    [Fact]
    public void Short_spans_and_negative_counts_name_the_argument()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            HostGemm.GroupedMatMulTransposeB(new float[5], new float[12], new float[6], [3], 2, 2)
        );
        Assert.Equal("a", ex.ParamName);
        var range = Assert.Throws<ArgumentOutOfRangeException>(() =>
            HostGemm.GroupedMatMul(new float[4], new float[4], new float[4], [2, -1], 2, 2)
        );
        Assert.Equal("rowsPerGroup", range.ParamName);
    }
}
