using MoeSharp.Compute;
using MoeSharp.Testing;

namespace MoeSharp.Tests.Compute;

public sealed class GemmTaskGridTests
{
    private static int Blocks(int extent, int block) => (extent + block - 1) / block;

    [Theory]
    [InlineData(256, 512, 16)] // one expert of the T 2048 layer on 16 threads
    [InlineData(256, 512, 8)]
    [InlineData(256, 512, 4)]
    [InlineData(100, 1024, 16)]
    [InlineData(1000, 64, 12)]
    [InlineData(13, 40, 16)]
    [InlineData(1, 1, 3)]
    public void Blocks_are_whole_panels_within_the_default_block_and_one_round_when_possible(int m, int n, int threads)
    {
        int mr = GemmMicroKernel.MR,
            nr = GemmMicroKernel.NR;
        int maxRows = 12 * mr,
            maxColumns = 8 * nr;
        (int rows, int columns) = GemmTaskGrid.Choose(m, n, threads, maxRows, maxColumns);

        Assert.True(rows > 0 && rows % mr == 0 && rows <= maxRows, $"row block {rows}");
        Assert.True(columns > 0 && columns % nr == 0 && columns <= maxColumns, $"column block {columns}");
        // A product that fits one round of the largest blocks never gets more tasks than threads.
        if (Blocks(m, maxRows) * Blocks(n, maxColumns) <= threads)
            Assert.True(Blocks(m, rows) * Blocks(n, columns) <= threads, $"{rows} x {columns} on {threads} threads");
    }

    [Fact]
    public void One_small_expert_on_16_threads_gets_16_blocks_that_read_little()
    {
        // 22 panels of 12 rows in two row blocks of 11, 16 panels of 32 columns in eight column blocks of 2: each block
        // reads 132 + 64 operand lines for 132 × 64 outputs, not 24 + 128 for 24 × 128 in three rounds of 44 blocks.
        if (GemmMicroKernel.MR != 12 || GemmMicroKernel.NR != 32)
            return; // the 256-bit kernel's panels (6 × 16) give another grid
        Assert.Equal((132, 64), GemmTaskGrid.Choose(256, 512, 16, 144, 256));
    }

    [Fact]
    public void A_1024_cubed_product_on_16_threads_runs_in_one_round_of_tall_blocks()
    {
        // With row blocks of up to 22 panels (HostGemm's private grid), 4 × 4 blocks of 264 × 256 rather than two
        // rounds of 8 × 4 blocks of 132 × 256; the small expert keeps its 2 × 8 blocks of 132 × 64.
        if (GemmMicroKernel.MR != 12 || GemmMicroKernel.NR != 32)
            return;
        Assert.Equal((264, 256), GemmTaskGrid.Choose(1024, 1024, 16, 264, 256));
        Assert.Equal((132, 64), GemmTaskGrid.Choose(256, 512, 16, 264, 256));
    }

    [Theory]
    [InlineData(256, 512, 512)]
    [InlineData(100, 200, 400)]
    [InlineData(40, 1000, 70)]
    [InlineData(13, 45, 7)]
    [InlineData(264, 512, 1000)] // deeper than 512: one chunk of 1000 steps per block
    [InlineData(1030, 64, 600)] // Aᵀ·B's A steps 4 KiB apart: packed, not read in place (4 threads and more)
    public void A_lone_product_on_many_threads_is_bitwise_the_one_thread_product(int m, int n, int k)
    {
        var random = new Random(m + n + k);
        float[] Random(int length) => RandomFloats.Uniform(random, length);
        float[] a = Random(m * k),
            b = Random(n * k),
            at = Random(k * m),
            bkn = Random(k * n),
            start = Random(m * n);
        string[] names = ["A·Bᵀ", "A·B", "Aᵀ·B"];
        foreach (bool accumulate in new[] { false, true })
        {
            float[][] one = Products(1);
            // Many rounds on more threads than the machine may have cores: tasks then take each other's tiles often.
            for (int round = 0; round < 5; round++)
            {
                foreach (int threads in new[] { 3, 4, 8, 16 })
                {
                    float[][] many = Products(threads);
                    for (int v = 0; v < 3; v++)
                    {
                        Assert.True(
                            many[v].AsSpan().SequenceEqual(one[v]),
                            $"{names[v]} on {threads} threads (accumulate {accumulate}, round {round}) changed a bit"
                        );
                    }
                }
            }

            float[][] Products(int threads)
            {
                float[][] c = [(float[])start.Clone(), (float[])start.Clone(), (float[])start.Clone()];
                HostGemm.MatMulTransposeB(a, b, c[0], m, n, k, accumulate, threads);
                HostGemm.MatMul(a, bkn, c[1], m, n, k, accumulate, threads);
                HostGemm.MatMulTransposeA(at, bkn, c[2], m, n, k, accumulate, threads);
                return c;
            }
        }
    }
}
