using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoeSharp.Compute;

internal static unsafe partial class GemmMicroKernel
{
    /// <summary>
    /// <see cref="Kernel512"/> for the first <paramref name="rows"/> rows (at most <see cref="MR"/>) of a tile, reading
    /// its operands where they lie rather than packed: row <c>r</c>'s A value at step <c>p</c> is
    /// <c>a[r·aRowStride + p·aStepStride]</c>, with one of the two strides 1 (a row-major A has step stride 1, a
    /// transposed one row stride 1, a packed panel row stride 1 and step stride <see cref="MR"/>), and step
    /// <c>p</c>'s 32 B values are at <c>b + p·ldb</c> (packed: <see cref="NR"/>; a row-major <c>[K, N]</c> B, A·B's
    /// and Aᵀ·B's, where it lies: its row stride). The same chains, so the same bits. A small product on many threads
    /// then packs no A, and no row-major B: each of the tasks sharing a block's rows would otherwise pack them again,
    /// and each packs its B columns before its first tile (<c>HostGemm.PrivateGrid.cs</c>). As in
    /// <see cref="EdgeKernel"/>, up to 8 rows run in groups of 4 (<see cref="Kernel512Rows4"/>) and more the whole
    /// tile; either reads and computes rows past <paramref name="rows"/> and stores them into C's whole tile of rows,
    /// so fewer rows than <see cref="MR"/> take a packed A panel (its zero padding) and a tile buffer.
    /// </summary>
    /// <remarks>
    /// Two steps a turn, as <see cref="Kernel512"/>, each layout in a loop of its own so that every broadcast is one
    /// <c>[base + index·4 + displacement]</c> operand whose step is the displacement (row-major) or the index
    /// (transposed): 41 (row-major) and 39.5 (transposed) instructions per 24 FMAs, where one step a turn through a
    /// run-time step stride (until stop 37) advanced three row pointers a step and issued 43. The GPU machine's Xeon
    /// spends stretches in a state where every instruction beside the FMAs issues slower (bench/RESULTS-cpu.md, stop
    /// 36). There, 256 × 512 × 512 on 2 threads ran at a median of 155 / 164 / 158 GFLOP/s (A·Bᵀ / A·B / Aᵀ·B) against
    /// 145 / 148 / 140 one step a turn, twelve rounds of the two builds alternating (stop 37, call A). B's step is an
    /// index register (<c>[b + ldb·4]</c> for a turn's second step, <c>b += 2·ldb</c>), as many instructions as the
    /// constant offsets of packed panels.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Kernel512Strided(
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
        if (rows <= 8)
        {
            for (int r0 = 0; r0 < rows; r0 += 4)
                Kernel512Rows4(
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
        {
            Kernel512RowMajorA(depth, a, aRowStride, b, ldb, c, ldc, load);
            return;
        }
        Debug.Assert(aRowStride == 1, "A read in place has a step stride or a row stride of 1.");
        Kernel512TransposedA(depth, a, aStepStride, b, ldb, c, ldc, load);
    }

    /// <summary>
    /// <see cref="Kernel512Strided"/> for a row-major A (step stride 1, rows <paramref name="rowStride"/> apart):
    /// rows through three pointers a third of the tile apart and three row offsets, each step a displacement.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512RowMajorA(
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

    /// <summary>
    /// Step <paramref name="step"/> (0 or 1, a constant once inlined) of <see cref="Kernel512RowMajorA"/>: row
    /// <c>4g + i</c> at <c>(a{4g} + step)[s{i}]</c>, B's values at <c>b + step·bStride</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StepRowMajorA(
        ref Tile512 t,
        float* a0,
        float* a4,
        float* a8,
        long s1,
        long s2,
        long s3,
        float* b,
        long bStride,
        int step
    ) =>
        Fma512(
            ref t,
            b,
            step * bStride,
            a0 + step,
            a0 + step + s1,
            a0 + step + s2,
            a0 + step + s3,
            a4 + step,
            a4 + step + s1,
            a4 + step + s2,
            a4 + step + s3,
            a8 + step,
            a8 + step + s1,
            a8 + step + s2,
            a8 + step + s3
        );

    /// <summary>
    /// <see cref="Kernel512Strided"/> for a transposed A (row stride 1, steps <paramref name="stepStride"/> apart):
    /// one pointer, each row a displacement, the second step of a turn the step stride as index.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512TransposedA(
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

    /// <summary>
    /// Step <paramref name="step"/> (0 or 1, a constant once inlined) of <see cref="Kernel512TransposedA"/>: row
    /// <c>r</c> at <c>a[r]</c>, then at <c>(a + r)[st]</c>; B's values at <c>b + step·bStride</c>, as in
    /// <see cref="StepRowMajorA"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StepTransposedA(ref Tile512 t, float* a, long st, float* b, long bStride, int step) =>
        Fma512(
            ref t,
            b,
            step * bStride,
            a + (step * st) + 0,
            a + (step * st) + 1,
            a + (step * st) + 2,
            a + (step * st) + 3,
            a + (step * st) + 4,
            a + (step * st) + 5,
            a + (step * st) + 6,
            a + (step * st) + 7,
            a + (step * st) + 8,
            a + (step * st) + 9,
            a + (step * st) + 10,
            a + (step * st) + 11
        );
}
