using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoeSharp.Compute;

internal static unsafe partial class GemmMicroKernel
{
    /// <summary>
    /// The FMA chains of the first <paramref name="rows"/> rows (at most <see cref="MR"/>) of a 12 × 32 tile of C (row
    /// stride <paramref name="ldc"/>) over <paramref name="depth"/> steps, reading B where it lies: a row-major
    /// <c>[K, N]</c> B (A·B's and Aᵀ·B's), step <c>p</c>'s 32 columns at <c>b + p·ldb</c>. Row <c>r</c>'s A value at
    /// step <c>p</c> is <c>a[r·aRowStride + p·aStepStride]</c>, one of the strides 1: A where it lies, or a packed
    /// panel (rows 1 apart, steps <see cref="MR"/>). A whole tile runs the in-place-A kernels' loops with B's stride;
    /// fewer rows run in groups of 4 (<see cref="Kernel512Rows4StridedB"/>), which read and compute the rows of the
    /// last group past <paramref name="rows"/> (a packed panel's zero padding) and store them into C's whole tile of
    /// rows, so fewer rows need a packed A and a tile buffer. The same chains as <see cref="Kernel"/>, so the same
    /// bits.
    /// </summary>
    public static void Kernel512StridedB(
        int rows,
        int depth,
        float* a,
        long aRowStride,
        long aStepStride,
        float* b,
        long ldb,
        float* c,
        long ldc,
        bool load
    )
    {
        if (rows < MR)
        {
            for (int r0 = 0; r0 < rows; r0 += 4)
                Kernel512Rows4StridedB(
                    depth,
                    a + (r0 * aRowStride),
                    aRowStride,
                    aStepStride,
                    b,
                    ldb,
                    c + (r0 * ldc),
                    ldc,
                    load
                );
            return;
        }
        if (aStepStride == 1)
            Kernel512RowMajorAStridedB(depth, a, aRowStride, b, ldb, c, ldc, load);
        else
            Kernel512TransposedAStridedB(depth, a, aStepStride, b, ldb, c, ldc, load);
    }

    /// <summary><see cref="Kernel512RowMajorA"/> with B's steps <paramref name="ldb"/> floats apart: the second step of
    /// a turn reads B at <c>[b + ldb·4]</c>, an index register, so a turn issues the packed loop's
    /// instructions.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512RowMajorAStridedB(
        int depth,
        float* a,
        long rowStride,
        float* b,
        long ldb,
        float* c,
        long ldc,
        bool load
    )
    {
        long s1 = rowStride,
            s2 = 2 * rowStride,
            s3 = 3 * rowStride;
        float* a0 = a;
        float* a4 = a + (4 * rowStride);
        float* a8 = a + (8 * rowStride);
        LoadTile512(out Tile512 t, c, ldc, load);
        long pair = 2 * ldb;
        float* pairsEnd = b + ((long)(depth & ~1) * ldb);
        while (b < pairsEnd)
        {
            StepRowMajorA(ref t, a0, a4, a8, s1, s2, s3, b, ldb, 0);
            StepRowMajorA(ref t, a0, a4, a8, s1, s2, s3, b, ldb, 1);
            a0 += 2;
            a4 += 2;
            a8 += 2;
            b += pair;
        }
        if ((depth & 1) != 0)
            StepRowMajorA(ref t, a0, a4, a8, s1, s2, s3, b, ldb, 0);
        StoreTile512(ref t, c, ldc);
    }

    /// <summary><see cref="Kernel512TransposedA"/> with B's steps <paramref name="ldb"/> floats apart, as
    /// <see cref="Kernel512RowMajorAStridedB"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512TransposedAStridedB(
        int depth,
        float* a,
        long stepStride,
        float* b,
        long ldb,
        float* c,
        long ldc,
        bool load
    )
    {
        LoadTile512(out Tile512 t, c, ldc, load);
        long aPair = 2 * stepStride,
            bPair = 2 * ldb;
        float* pairsEnd = b + ((long)(depth & ~1) * ldb);
        while (b < pairsEnd)
        {
            StepTransposedA(ref t, a, stepStride, b, ldb, 0);
            StepTransposedA(ref t, a, stepStride, b, ldb, 1);
            a += aPair;
            b += bPair;
        }
        if ((depth & 1) != 0)
            StepTransposedA(ref t, a, stepStride, b, ldb, 0);
        StoreTile512(ref t, c, ldc);
    }

    /// <summary>4 rows of <see cref="Kernel512StridedB"/>: rows <paramref name="aRowStride"/> apart, steps
    /// <paramref name="aStepStride"/> apart.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512Rows4StridedB(
        int depth,
        float* a,
        long aRowStride,
        long aStepStride,
        float* b,
        long ldb,
        float* c,
        long ldc,
        bool load
    )
    {
        Vector512<float> c000 = Ld512(c, ldc, 0, 0, load),
            c001 = Ld512(c, ldc, 0, 16, load);
        Vector512<float> c010 = Ld512(c, ldc, 1, 0, load),
            c011 = Ld512(c, ldc, 1, 16, load);
        Vector512<float> c020 = Ld512(c, ldc, 2, 0, load),
            c021 = Ld512(c, ldc, 2, 16, load);
        Vector512<float> c030 = Ld512(c, ldc, 3, 0, load),
            c031 = Ld512(c, ldc, 3, 16, load);
        for (int p = 0; p < depth; p++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> av;
            av = Vector512.Create(a[0]);
            c000 = Vector512.FusedMultiplyAdd(av, b0, c000);
            c001 = Vector512.FusedMultiplyAdd(av, b1, c001);
            av = Vector512.Create(a[aRowStride]);
            c010 = Vector512.FusedMultiplyAdd(av, b0, c010);
            c011 = Vector512.FusedMultiplyAdd(av, b1, c011);
            av = Vector512.Create(a[2 * aRowStride]);
            c020 = Vector512.FusedMultiplyAdd(av, b0, c020);
            c021 = Vector512.FusedMultiplyAdd(av, b1, c021);
            av = Vector512.Create(a[3 * aRowStride]);
            c030 = Vector512.FusedMultiplyAdd(av, b0, c030);
            c031 = Vector512.FusedMultiplyAdd(av, b1, c031);
            a += aStepStride;
            b += ldb;
        }
        c000.Store(c + (0 * ldc) + 0);
        c001.Store(c + (0 * ldc) + 16);
        c010.Store(c + (1 * ldc) + 0);
        c011.Store(c + (1 * ldc) + 16);
        c020.Store(c + (2 * ldc) + 0);
        c021.Store(c + (2 * ldc) + 16);
        c030.Store(c + (3 * ldc) + 0);
        c031.Store(c + (3 * ldc) + 16);
    }
}
