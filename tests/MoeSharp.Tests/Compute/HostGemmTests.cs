using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Testing;

namespace MoeSharp.Tests.Compute;

public sealed class HostGemmTests
{
    /// <summary>Naive float64 C = Σ_p A(i,p) B(p,j) with accessors.</summary>
    private static double[] Naive(int m, int n, int k, Func<int, int, float> a, Func<int, int, float> b)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)a(i, p) * b(p, j);
            c[(i * n) + j] = s;
        }
        return c;
    }

    private static void AssertClose(double[] expected, float[] actual, int k)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            // Each term is ≤ 1 in magnitude: a float32 chain of k FMAs is off by at most ~k·2^-24·k.
            Assert.True(
                Math.Abs(expected[i] - actual[i]) <= 1e-6 * (k + 1) * Math.Sqrt(k + 1),
                $"element {i}: {actual[i]} vs {expected[i]}"
            );
        }
    }

    [Fact]
    public void All_three_variants_match_naive_float64_on_random_shapes()
    {
        Gen.Select(Gen.Int[0, 40], Gen.Int[0, 40], Gen.Int[0, 300], Gen.Int)
            .Sample(
                (m, n, k, seed) =>
                {
                    var random = new Random(seed);
                    float[] a = RandomFloats.Uniform(random, m * k),
                        b = RandomFloats.Uniform(random, n * k);
                    var c = new float[m * n];
                    HostGemm.MatMulTransposeB(a, b, c, m, n, k);
                    AssertClose(Naive(m, n, k, (i, p) => a[(i * k) + p], (p, j) => b[(j * k) + p]), c, k);
                    HostGemm.MatMul(a, b, c, m, n, k);
                    AssertClose(Naive(m, n, k, (i, p) => a[(i * k) + p], (p, j) => b[(p * n) + j]), c, k);
                    HostGemm.MatMulTransposeA(a, b, c, m, n, k);
                    AssertClose(Naive(m, n, k, (i, p) => a[(p * m) + i], (p, j) => b[(p * n) + j]), c, k);
                },
                iter: 60
            );
    }

    [Fact]
    public void Accumulate_continues_from_existing_values_and_K_zero_clears()
    {
        var random = new Random(3);
        float[] a = RandomFloats.Uniform(random, 5 * 7),
            b = RandomFloats.Uniform(random, 4 * 7);
        var c = Enumerable.Repeat(2f, 20).ToArray();
        HostGemm.MatMulTransposeB(a, b, c, 5, 4, 7, accumulate: true);
        double[] expected = Naive(5, 4, 7, (i, p) => a[(i * 7) + p], (p, j) => b[(j * 7) + p])
            .Select(v => v + 2)
            .ToArray();
        AssertClose(expected, c, 7);
        HostGemm.MatMulTransposeB([], [], c, 5, 4, 0);
        Assert.All(c, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void A_row_is_bitwise_identical_alone_or_inside_a_batch()
    {
        Gen.Select(Gen.Int[1, 600], Gen.Int[1, 70], Gen.Int[1, 700], Gen.Int)
            .Sample(
                (m, n, k, seed) =>
                {
                    var random = new Random(seed);
                    float[] a = RandomFloats.Uniform(random, m * k),
                        b = RandomFloats.Uniform(random, n * k);
                    var batch = new float[m * n];
                    HostGemm.MatMulTransposeB(a, b, batch, m, n, k);
                    int row = random.Next(m);
                    var alone = new float[n];
                    HostGemm.MatMulTransposeB(a.AsSpan(row * k, k), b, alone, 1, n, k);
                    Assert.True(
                        alone.AsSpan().SequenceEqual(batch.AsSpan(row * n, n)),
                        $"row {row} of {m} differs (n={n}, k={k})"
                    );

                    // Same for A·B (the input-gradient product).
                    var bKn = RandomFloats.Uniform(random, k * n);
                    HostGemm.MatMul(a, bKn, batch, m, n, k);
                    HostGemm.MatMul(a.AsSpan(row * k, k), bKn, alone, 1, n, k);
                    Assert.True(
                        alone.AsSpan().SequenceEqual(batch.AsSpan(row * n, n)),
                        $"A·B row {row} of {m} differs"
                    );
                },
                iter: 25
            );
    }

    [Fact]
    public void Every_element_is_the_ascending_fused_multiply_add_chain_bitwise()
    {
        // The contract that makes the GEMM row-invariant, checked on whichever kernel this machine runs (the 512-bit
        // one where AVX-512 is present): c = fma(a_p, b_p, c) for p = 0, 1, … from zero, nothing else.
        Gen.Select(Gen.Int[1, 30], Gen.Int[1, 70], Gen.Int[1, 400], Gen.Int)
            .Sample(
                (m, n, k, seed) =>
                {
                    var random = new Random(seed);
                    float[] a = RandomFloats.Uniform(random, m * k),
                        b = RandomFloats.Uniform(random, n * k);
                    var c = new float[m * n];
                    HostGemm.MatMulTransposeB(a, b, c, m, n, k);
                    for (int i = 0; i < m; i++)
                    {
                        for (int j = 0; j < n; j++)
                        {
                            float chain = 0f;
                            for (int p = 0; p < k; p++)
                                chain = MathF.FusedMultiplyAdd(a[(i * k) + p], b[(j * k) + p], chain);
                            Assert.Equal(
                                BitConverter.SingleToInt32Bits(chain),
                                BitConverter.SingleToInt32Bits(c[(i * n) + j])
                            );
                        }
                    }
                },
                iter: 40
            );
    }

    [Fact]
    public void Partitioning_and_thread_count_never_change_a_bit()
    {
        var random = new Random(11);
        const int m = 203,
            n = 97,
            k = 531;
        float[] a = RandomFloats.Uniform(random, m * k),
            b = RandomFloats.Uniform(random, n * k);
        var reference = new float[m * n];
        HostGemm.MatMulTransposeB(a, b, reference, m, n, k);
        foreach (
            var (mc, nc, kc, dop) in new[]
            {
                (6, 16, 1, 1),
                (12, 32, 37, 2),
                (72, 256, 256, -1),
                (198, 96, 1000, 3),
                (6, 16, 531, 4),
            }
        )
        {
            var c = new float[m * n];
            HostGemm.MatMulTransposeBBlocked(a, b, c, m, n, k, mc, nc, kc, dop);
            Assert.True(
                c.AsSpan().SequenceEqual(reference),
                $"blocking mc={mc} nc={nc} kc={kc} dop={dop} changed the result"
            );
        }

        // Weight-gradient product: same result for any thread count.
        float[] dy = RandomFloats.Uniform(random, k * m),
            x = RandomFloats.Uniform(random, k * n);
        var w1 = new float[m * n];
        var w2 = new float[m * n];
        HostGemm.MatMulTransposeA(dy, x, w1, m, n, k, maxDegreeOfParallelism: 1);
        HostGemm.MatMulTransposeA(dy, x, w2, m, n, k);
        Assert.True(w1.AsSpan().SequenceEqual(w2));
    }

    [Fact]
    public void Wrong_lengths_name_the_argument()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            HostGemm.MatMulTransposeB(new float[5], new float[6], new float[6], 2, 3, 2)
        );
        Assert.Equal("a", ex.ParamName);
        Assert.Contains("M=2", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => HostGemm.MatMul(new float[4], new float[6], new float[5], 2, 3, 2));
        Assert.Equal("c", ex.ParamName);
    }

    /// <summary>The ascending FMA chain of one element, from zero.</summary>
    private static float Chain(int k, Func<int, float> a, Func<int, float> b)
    {
        float c = 0f;
        for (int p = 0; p < k; p++)
            c = MathF.FusedMultiplyAdd(a(p), b(p), c);
        return c;
    }

    public static TheoryData<int, int, int> TilingEdges()
    {
        int mr = GemmMicroKernel.MR,
            nr = GemmMicroKernel.NR,
            kc = GemmMicroKernel.KC;
        return new TheoryData<int, int, int>
        {
            { 1, 1, 1 },
            { 1, nr, kc },
            { 1, 3 * nr + 5, kc + 1 },
            { mr + 1, 1, 9 },
            { 7, 9, 7 },
            { mr - 1, nr - 1, 2 * kc + 7 },
            { 3 * mr + 5, 2 * nr + 3, kc - 1 },
            { 97, 131, 3 * kc + 13 },
            { 8, 8, 8 },
            { 9, 17, 15 },
            // Edge panels of 2, 3, 4, 6 and 10 rows (the 4-row kernel once, twice, or the whole tile), and six B panels
            // with a partial last one over three chunks (panels packed row by row in a rotated order).
            { (2 * mr) + 2, (5 * nr) + 9, (2 * kc) + 1 },
            { mr + 3, nr, 17 },
            { 4, (2 * nr) + 7, kc + 3 },
            { mr + 6, 3 * nr, 5 },
            { 10, 1, 33 },
            // Two chunks with an edge panel: packed on one thread, A's rows read where they lie on the private grid.
            { (2 * mr) + 5, nr + 3, kc + 9 },
        };
    }

    [Theory]
    [MemberData(nameof(TilingEdges))]
    public void Tiling_edges_keep_the_chain_in_all_three_products_on_any_thread_count(int m, int n, int k)
    {
        // Odd sizes, one row or column, K not a multiple of the block: partial tiles, the 8 × 8 transposing packers'
        // remainders and the zero padding all feed the same ascending FMA chain per element, bitwise.
        var random = new Random((m * 7919) + (n * 104729) + k);
        float[] a = RandomFloats.Uniform(random, m * k),
            b = RandomFloats.Uniform(random, n * k);
        foreach (int threads in new[] { 1, 2, 5 })
        {
            var nt = new float[m * n];
            var nn = new float[m * n];
            var tn = new float[m * n];
            HostGemm.MatMulTransposeB(a, b, nt, m, n, k, maxDegreeOfParallelism: threads);
            HostGemm.MatMul(a, b, nn, m, n, k, maxDegreeOfParallelism: threads);
            HostGemm.MatMulTransposeA(a, b, tn, m, n, k, maxDegreeOfParallelism: threads);
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    int at = (i * n) + j;
                    AssertBits(Chain(k, p => a[(i * k) + p], p => b[(j * k) + p]), nt[at], "A·Bᵀ", i, j, threads);
                    AssertBits(Chain(k, p => a[(i * k) + p], p => b[(p * n) + j]), nn[at], "A·B", i, j, threads);
                    AssertBits(Chain(k, p => a[(p * m) + i], p => b[(p * n) + j]), tn[at], "Aᵀ·B", i, j, threads);
                }
            }
        }

        static void AssertBits(float expected, float actual, string product, int i, int j, int threads) =>
            Assert.True(
                BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual),
                $"{product} element ({i}, {j}) on {threads} threads: {actual} is not the FMA chain's {expected}"
            );
    }

    [Theory]
    [InlineData(256, 512, 512, 16)] // one T 2048 expert: 2 x 8 blocks, A and B read in place, a last panel of 4 rows
    [InlineData(256, 512, 512, 2)] // the same on 2 threads: 1 x 2 blocks
    [InlineData(300, 256, 300, 16)] // Aᵀ·B's A steps 300 floats apart: packed, B still read in place
    [InlineData(30, 64, 100, 2)] // two whole row panels and one of 6 rows (4-row groups)
    [InlineData(34, 32, 129, 3)] // one panel of 32 columns, an odd depth, a last panel of 10 rows (a whole padded tile)
    [InlineData(256, 512, 1, 2)] // one step
    public void A_row_major_B_read_in_place_keeps_the_chain_in_A_B_and_At_B(int m, int n, int k, int threads)
    {
        // Small products on several threads take the private grid, which reads a row-major B (A·B's and Aᵀ·B's [K, N],
        // steps at most 2 KiB apart) where it lies: every element must still be its ascending FMA chain, from zero and
        // from C's values, in whole tiles and in short last row panels, alone and as the one group with rows of a
        // grouped call (whose B and C are then a group's slice).
        var random = new Random((m * 31) + n + k + threads);
        float[] a = RandomFloats.Uniform(random, m * k),
            b = RandomFloats.Uniform(random, 3 * k * n),
            start = RandomFloats.Uniform(random, 3 * m * n);
        ReadOnlySpan<float> groupB = b.AsSpan(k * n, k * n);
        foreach (bool accumulate in new[] { false, true })
        {
            float[] nn = start[..(m * n)],
                tn = start[..(m * n)],
                groupedNn = start[..(m * n)],
                groupedTn = (float[])start.Clone();
            HostGemm.MatMul(a, groupB, nn, m, n, k, accumulate, threads);
            HostGemm.MatMulTransposeA(a, groupB, tn, m, n, k, accumulate, threads);
            // Group 1 of three: A·B's rows are group 1's, with b[1]; Aᵀ·B's reduction rows are, into c[1].
            HostGemm.GroupedMatMul(a, b, groupedNn, [0, m, 0], n, k, accumulate, threads);
            HostGemm.GroupedMatMulTransposeA(a, groupB, groupedTn, [0, k, 0], m, n, accumulate, threads);
            Assert.True(
                groupedTn.AsSpan(0, m * n).SequenceEqual(start.AsSpan(0, m * n))
                    && groupedTn.AsSpan(2 * m * n).SequenceEqual(start.AsSpan(2 * m * n)),
                "groups without rows left their C as it was"
            );
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    float fromNn = accumulate ? start[(i * n) + j] : 0f,
                        fromTn = fromNn,
                        fromGroupedTn = accumulate ? start[(m * n) + (i * n) + j] : 0f;
                    for (int p = 0; p < k; p++)
                    {
                        float bpj = groupB[(p * n) + j];
                        fromNn = MathF.FusedMultiplyAdd(a[(i * k) + p], bpj, fromNn);
                        fromTn = MathF.FusedMultiplyAdd(a[(p * m) + i], bpj, fromTn);
                        fromGroupedTn = MathF.FusedMultiplyAdd(a[(p * m) + i], bpj, fromGroupedTn);
                    }
                    Check(fromNn, nn[(i * n) + j], "A·B", i, j);
                    Check(fromTn, tn[(i * n) + j], "Aᵀ·B", i, j);
                    Check(fromNn, groupedNn[(i * n) + j], "grouped A·B", i, j);
                    Check(fromGroupedTn, groupedTn[(m * n) + (i * n) + j], "grouped Aᵀ·B", i, j);
                }
            }

            void Check(float expected, float actual, string product, int i, int j)
            {
                if (BitConverter.SingleToInt32Bits(expected) != BitConverter.SingleToInt32Bits(actual))
                {
                    Assert.Fail(
                        $"{product} ({i}, {j}) on {threads} threads (accumulate {accumulate}): {actual} is not the"
                            + $" FMA chain's {expected}"
                    );
                }
            }
        }
    }

    [Theory]
    [InlineData(1, 1024, 1)]
    [InlineData(512, 384, 256)]
    [InlineData(512, 1024, 512)]
    [InlineData(1024, 1024, 1024)]
    [InlineData(1100, 1024, 550)]
    [InlineData(3085, 1024, 772)]
    [InlineData(7, 3, 3)]
    public void Chunk_depth_cuts_the_reduction_into_as_few_even_chunks_as_the_limit_allows(int k, int kc, int depth)
    {
        Assert.Equal(depth, HostGemm.ChunkDepth(k, kc));
        int chunks = (k + depth - 1) / depth;
        Assert.Equal((k + kc - 1) / kc, chunks);
        // Every chunk but the last is the full depth, and the last is short by less than one step per chunk.
        Assert.InRange(k - ((chunks - 1) * depth), Math.Max(1, depth - chunks + 1), depth);
    }

    [Fact]
    public void Reused_packing_buffers_carry_nothing_from_one_call_to_the_next()
    {
        // A large product leaves its packed panels behind in this thread's buffers; a smaller one of other values must
        // not see them (every padded lane is written), and the large one recomputed must be bitwise the same.
        var random = new Random(5);
        const int m = 61,
            n = 77,
            k = 300;
        float[] a = RandomFloats.Uniform(random, m * k),
            b = RandomFloats.Uniform(random, n * k);
        var first = new float[m * n];
        HostGemm.MatMulTransposeB(a, b, first, m, n, k, maxDegreeOfParallelism: 1);
        float[] a2 = RandomFloats.Uniform(random, 3 * 5),
            b2 = RandomFloats.Uniform(random, 2 * 5);
        var small = new float[3 * 2];
        HostGemm.MatMulTransposeB(a2, b2, small, 3, 2, 5, maxDegreeOfParallelism: 1);
        for (int i = 0; i < 3; i++)
        {
            for (int j = 0; j < 2; j++)
            {
                float expected = Chain(5, p => a2[(i * 5) + p], p => b2[(j * 5) + p]);
                float actual = small[(i * 2) + j];
                Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(actual));
            }
        }
        var again = new float[m * n];
        HostGemm.MatMulTransposeB(a, b, again, m, n, k, maxDegreeOfParallelism: 1);
        Assert.True(again.AsSpan().SequenceEqual(first));
    }

    [Theory]
    [InlineData(13, 16)] // an 8-line group, a 4-line group, one line element-wise
    [InlineData(12, 12)] // a whole 12-row A panel: 8 + 4 lines
    [InlineData(7, 12)] // a 4-line group and three lines element-wise, five zero lines
    [InlineData(4, 32)] // only a 4-line group in a 32-wide B panel
    [InlineData(3, 12)] // element-wise only
    [InlineData(28, 32)] // three 8-line groups and a 4-line group
    public void Transposing_packer_writes_every_line_and_zero_pads_the_rest(int lines, int width)
    {
        // Lines of 19 steps: two blocks of 8 steps through registers and 3 element-wise steps for every group.
        const int depth = 19,
            stride = 23;
        var src = Enumerable.Range(0, lines * stride).Select(v => (float)v).ToArray();
        var dst = Enumerable.Repeat(float.NaN, depth * width).ToArray();
        unsafe
        {
            fixed (float* s = src)
            fixed (float* d = dst)
            {
                GemmMicroKernel.TransposeInto(s, stride, lines, depth, d, width);
            }
        }
        for (int p = 0; p < depth; p++)
        {
            for (int r = 0; r < width; r++)
            {
                Assert.Equal(r < lines ? src[(r * stride) + p] : 0f, dst[(p * width) + r]);
            }
        }
    }

    [Theory]
    [InlineData(6, 42)] // narrow runs, many panels: groups of 8, the last of 2
    [InlineData(12, 17)] // just past the single-pass limit: 8 + 8 + 1
    [InlineData(12, 16)] // at the limit: one pass
    [InlineData(16, 33)] // a whole line a run: one pass however many
    [InlineData(32, 20)]
    [InlineData(6, 1)]
    public void Contiguous_packer_copies_every_listed_panel_in_any_order(int width, int count)
    {
        // Lines contiguous at each step, steps a row apart (B as [K, N], A as [K, M]); panels listed backwards and
        // skipping every third one, so a group is not a range of panels.
        const int depth = 19;
        int total = (count * 3 / 2) + 2;
        int stride = (total * width) + 5;
        var src = Enumerable.Range(0, depth * stride).Select(v => (float)v).ToArray();
        int[] panels = Enumerable.Range(0, total).Where(q => q % 3 != 2).Reverse().Take(count).ToArray();
        Assert.Equal(count, panels.Length);
        var dst = Enumerable.Repeat(float.NaN, count * depth * width).ToArray();
        unsafe
        {
            fixed (float* s = src)
            fixed (float* d = dst)
            {
                var destinations = new nint[count];
                for (int i = 0; i < count; i++)
                    destinations[i] = (nint)(d + ((long)i * depth * width));
                GemmMicroKernel.PackContiguousPanels(s, stride, width, panels, destinations, depth);
            }
        }
        for (int i = 0; i < count; i++)
        {
            for (int p = 0; p < depth; p++)
            {
                for (int l = 0; l < width; l++)
                {
                    Assert.Equal(src[(p * stride) + (panels[i] * width) + l], dst[(((i * depth) + p) * width) + l]);
                }
            }
        }
    }
}
