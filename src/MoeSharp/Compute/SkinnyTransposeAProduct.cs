using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoeSharp.Compute;

/// <summary>
/// <c>C[M, N] = A[K, M]ᵀ · B[K, N]</c> for few rows M and many tokens K (the router's weight gradient
/// <c>dlogitsᵀ · x</c>, the trainer's head gradient): B read straight from its rows, never packed.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="HostGemm"/> packs all of B (<c>K · N</c> floats: 32 MiB at 8192 tokens of 1024) before one or two
/// row panels use it once: more memory traffic than the product itself, and above the kept scratch a fresh block per
/// call whose pages the kernel faults in and zeroes every step. Here each task owns a strip of 64 columns (four 512-bit
/// vectors) and some rows, and walks the tokens in blocks of <see cref="BlockTokens"/>: the block's B lines (32 KiB)
/// are read from memory once and then from L1 by every row strip of the task.
/// </para>
/// <para>
/// Same bits as <see cref="HostGemm"/>: every element is one ascending fused multiply-add chain over the tokens, from
/// +0 (or C's value when accumulating); a block's partial sum is stored in C as float32 and reloaded by the next
/// block, which is the same chain. Tasks never share an output element, so threads change nothing.
/// </para>
/// </remarks>
internal static unsafe class SkinnyTransposeAProduct
{
    /// <summary>Columns of one task's strip: four 512-bit vectors.</summary>
    private const int StripColumns = 64;

    /// <summary>Rows of one register tile (4 × 4 vectors: 16 accumulators).</summary>
    private const int TileRows = 4;

    /// <summary>Tokens per block: 128 rows of a 64-column strip are 32 KiB, inside L1 with A's block.</summary>
    private const int BlockTokens = 128;

    /// <summary>At most this many rows: two of the GEMM's 512-bit row panels, which would use its packed B at most
    /// twice.</summary>
    private const int MaxRows = 24;

    /// <summary>Below this many multiply-adds the product runs on the calling thread.</summary>
    private const long SequentialFlops = 1L << 16;

    /// <summary>Whether this path computes an <c>M × N</c> product (512-bit vectors, whole strips, few rows).</summary>
    public static bool Handles(int m, int n) =>
        GemmMicroKernel.Wide && m > 0 && m <= MaxRows && n > 0 && n % StripColumns == 0;

    /// <summary>
    /// Computes the product (<paramref name="k"/> ≥ 1) on at most <paramref name="threads"/> threads;
    /// <see cref="Handles"/> must be true.
    /// </summary>
    public static void Run(float* a, float* b, float* c, int m, int n, int k, bool accumulate, int threads)
    {
        int strips = n / StripColumns;
        int tiles = (m + TileRows - 1) / TileRows;
        if ((long)m * n * k < SequentialFlops)
            threads = 1;
        // Row groups only when the column strips alone leave threads idle (T 2048, D 512: 8 strips on 16 threads); each
        // group reads the strip's B again, from L3 for the later ones.
        int groups = 1;
        while (strips * groups < 2 * threads && groups < tiles)
            groups++;
        int tilesPerGroup = (tiles + groups - 1) / groups;
        groups = (tiles + tilesPerGroup - 1) / tilesPerGroup;
        nint pa = (nint)a,
            pb = (nint)b,
            pc = (nint)c;
        HostWorkerTeam.For(
            strips * groups,
            threads,
            task =>
            {
                int strip = task % strips,
                    group = task / strips;
                int firstRow = group * tilesPerGroup * TileRows;
                int rows = Math.Min(tilesPerGroup * TileRows, m - firstRow);
                Strip((float*)pa, (float*)pb, (float*)pc, m, n, k, firstRow, rows, strip * StripColumns, accumulate);
            }
        );
    }

    /// <summary>Rows <c>[firstRow, firstRow + rows)</c> of one 64-column strip, block of tokens after block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Strip(
        float* a,
        float* b,
        float* c,
        int m,
        int n,
        int k,
        int firstRow,
        int rows,
        int column,
        bool accumulate
    )
    {
        for (int p0 = 0; p0 < k; p0 += BlockTokens)
        {
            int depth = Math.Min(BlockTokens, k - p0);
            // The chain starts from +0 in the first block unless accumulating; later blocks continue from C.
            bool load = accumulate || p0 > 0;
            float* aBlock = a + ((long)p0 * m);
            float* bBlock = b + ((long)p0 * n) + column;
            int i = firstRow;
            for (; i + TileRows <= firstRow + rows; i += TileRows)
                FourRows(aBlock + i, m, bBlock, n, c + ((long)i * n) + column, n, depth, load);
            for (; i < firstRow + rows; i++)
                OneRow(aBlock + i, m, bBlock, n, c + ((long)i * n) + column, depth, load);
        }
    }

    /// <summary>A 4 × 64 tile over <paramref name="depth"/> tokens: A element (p, r) at <c>a[p·lda + r]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourRows(float* a, int lda, float* b, int ldb, float* c, long ldc, int depth, bool load)
    {
        Vector512<float> c00 = Ld(c, load),
            c01 = Ld(c + 16, load),
            c02 = Ld(c + 32, load),
            c03 = Ld(c + 48, load);
        Vector512<float> c10 = Ld(c + ldc, load),
            c11 = Ld(c + ldc + 16, load),
            c12 = Ld(c + ldc + 32, load),
            c13 = Ld(c + ldc + 48, load);
        Vector512<float> c20 = Ld(c + (2 * ldc), load),
            c21 = Ld(c + (2 * ldc) + 16, load),
            c22 = Ld(c + (2 * ldc) + 32, load),
            c23 = Ld(c + (2 * ldc) + 48, load);
        Vector512<float> c30 = Ld(c + (3 * ldc), load),
            c31 = Ld(c + (3 * ldc) + 16, load),
            c32 = Ld(c + (3 * ldc) + 32, load),
            c33 = Ld(c + (3 * ldc) + 48, load);
        for (int p = 0; p < depth; p++)
        {
            Vector512<float> b0 = Vector512.Load(b),
                b1 = Vector512.Load(b + 16),
                b2 = Vector512.Load(b + 32),
                b3 = Vector512.Load(b + 48);
            Vector512<float> av = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(av, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(av, b2, c02);
            c03 = Vector512.FusedMultiplyAdd(av, b3, c03);
            av = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(av, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(av, b2, c12);
            c13 = Vector512.FusedMultiplyAdd(av, b3, c13);
            av = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(av, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(av, b2, c22);
            c23 = Vector512.FusedMultiplyAdd(av, b3, c23);
            av = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(av, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(av, b2, c32);
            c33 = Vector512.FusedMultiplyAdd(av, b3, c33);
            a += lda;
            b += ldb;
        }
        St(c, c00, c01, c02, c03);
        St(c + ldc, c10, c11, c12, c13);
        St(c + (2 * ldc), c20, c21, c22, c23);
        St(c + (3 * ldc), c30, c31, c32, c33);
    }

    /// <summary>A 1 × 64 tile (the rows left over by <see cref="FourRows"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneRow(float* a, int lda, float* b, int ldb, float* c, int depth, bool load)
    {
        Vector512<float> c0 = Ld(c, load),
            c1 = Ld(c + 16, load),
            c2 = Ld(c + 32, load),
            c3 = Ld(c + 48, load);
        for (int p = 0; p < depth; p++)
        {
            Vector512<float> av = Vector512.Create(a[0]);
            c0 = Vector512.FusedMultiplyAdd(av, Vector512.Load(b), c0);
            c1 = Vector512.FusedMultiplyAdd(av, Vector512.Load(b + 16), c1);
            c2 = Vector512.FusedMultiplyAdd(av, Vector512.Load(b + 32), c2);
            c3 = Vector512.FusedMultiplyAdd(av, Vector512.Load(b + 48), c3);
            a += lda;
            b += ldb;
        }
        St(c, c0, c1, c2, c3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Ld(float* c, bool load) => load ? Vector512.Load(c) : Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void St(float* c, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
    {
        v0.Store(c);
        v1.Store(c + 16);
        v2.Store(c + 32);
        v3.Store(c + 48);
    }
}
