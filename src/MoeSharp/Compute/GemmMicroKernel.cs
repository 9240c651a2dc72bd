using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoeSharp.Compute;

/// <summary>
/// The packing routines and the register-blocked inner kernel behind <see cref="HostGemm"/>.
/// </summary>
/// <remarks>
/// Every output element is computed by one chain <c>c = fma(a[p], b[p], c)</c> for <c>p = 0 … P-1</c>
/// in ascending order, starting from zero or from the caller's value. The kernel keeps one element per
/// vector lane and never splits the <c>p</c> loop across lanes, so neither the tile an element lands
/// in, nor its lane, nor the thread that runs it can change the operations it sees: that is what makes
/// the GEMM row-invariant and deterministic. Panels are zero-padded to whole tiles; padded lanes compute
/// values that are never stored.
/// </remarks>
internal static unsafe class GemmMicroKernel
{
    /// <summary>
    /// Whether the 512-bit kernel runs (AVX-512F present): 12 × 32 tiles in 24 of the 32 vector registers, half the
    /// instructions of the 256-bit kernel per FMA and fewer broadcasts per FMA. Otherwise 6 × 16 tiles of 256-bit
    /// vectors (AVX2 + FMA, or whatever <see cref="Vector256"/> maps to).
    /// </summary>
    public static readonly bool Wide = Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported;

    /// <summary>Rows of the output tile (broadcast operand).</summary>
    public static readonly int MR = Wide ? 12 : 6;

    /// <summary>Columns of the output tile (two vectors).</summary>
    public static readonly int NR = Wide ? 32 : 16;

    /// <summary>Reduction depth of one packed block: a B micro-panel (<c>KC · NR</c> floats) fills about half of L1.</summary>
    public static readonly int KC = Wide ? 128 : 256;

    /// <summary>
    /// Runs the FMA chains of one full <c>MR × NR</c> tile of C (row stride <paramref name="ldc"/>) over
    /// <paramref name="depth"/> packed steps with the kernel of this machine, from zero or, when
    /// <paramref name="load"/>, continuing from C's values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Kernel(int depth, float* a, float* b, float* c, long ldc, bool load)
    {
        if (Wide) Kernel512(depth, a, b, c, ldc, load);
        else Kernel256(depth, a, b, c, ldc, load);
    }

    /// <summary>
    /// Packs rows <c>[i0, i0+rows)</c> of the logical left operand <c>A(i, p)</c> (element at
    /// <c>src[i*rowStride + p*colStride]</c>) into <c>[P][MR]</c> micro-panel order, zero-padding
    /// missing rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackA(float* src, long rowStride, long colStride, int i0, int rows, int p0, int depth, float* dst)
    {
        for (int p = 0; p < depth; p++)
        {
            float* s = src + (i0 * rowStride) + ((p0 + p) * colStride);
            float* d = dst + (p * MR);
            int r = 0;
            for (; r < rows; r++) d[r] = s[r * rowStride];
            for (; r < MR; r++) d[r] = 0f;
        }
    }

    /// <summary>
    /// Packs columns <c>[j0, j0+cols)</c> of the logical right operand <c>B(p, j)</c> (element at
    /// <c>src[p*pStride + j*jStride]</c>) into <c>[P][NR]</c> micro-panel order, zero-padding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackB(float* src, long pStride, long jStride, int j0, int cols, int p0, int depth, float* dst)
    {
        if (jStride == 1)
        {
            // Contiguous columns (A·B, Aᵀ·B): copy rows of the panel.
            for (int p = 0; p < depth; p++)
            {
                float* s = src + ((p0 + p) * pStride) + j0;
                float* d = dst + (p * NR);
                int c = 0;
                for (; c < cols; c++) d[c] = s[c];
                for (; c < NR; c++) d[c] = 0f;
            }
            return;
        }

        // Strided columns (A·Bᵀ): walk each source row contiguously for locality, write strided.
        for (int c = 0; c < NR; c++)
        {
            float* d = dst + c;
            if (c < cols)
            {
                float* s = src + ((j0 + c) * jStride) + (p0 * pStride);
                for (int p = 0; p < depth; p++) d[p * NR] = s[p * pStride];
            }
            else
            {
                for (int p = 0; p < depth; p++) d[p * NR] = 0f;
            }
        }
    }

    /// <summary>
    /// The FMA chains of one <c>6 × 16</c> tile of C (row stride <paramref name="ldc"/>) over <paramref name="depth"/>
    /// packed steps, from zero or from C's values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel256(int depth, float* a, float* b, float* c, long ldc, bool load)
    {
        Vector256<float> c00 = Ld256(c, ldc, 0, 0, load), c01 = Ld256(c, ldc, 0, 8, load);
        Vector256<float> c10 = Ld256(c, ldc, 1, 0, load), c11 = Ld256(c, ldc, 1, 8, load);
        Vector256<float> c20 = Ld256(c, ldc, 2, 0, load), c21 = Ld256(c, ldc, 2, 8, load);
        Vector256<float> c30 = Ld256(c, ldc, 3, 0, load), c31 = Ld256(c, ldc, 3, 8, load);
        Vector256<float> c40 = Ld256(c, ldc, 4, 0, load), c41 = Ld256(c, ldc, 4, 8, load);
        Vector256<float> c50 = Ld256(c, ldc, 5, 0, load), c51 = Ld256(c, ldc, 5, 8, load);
        for (int p = 0; p < depth; p++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> av = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(av, b0, c00); c01 = Vector256.FusedMultiplyAdd(av, b1, c01);
            av = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(av, b0, c10); c11 = Vector256.FusedMultiplyAdd(av, b1, c11);
            av = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(av, b0, c20); c21 = Vector256.FusedMultiplyAdd(av, b1, c21);
            av = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(av, b0, c30); c31 = Vector256.FusedMultiplyAdd(av, b1, c31);
            av = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(av, b0, c40); c41 = Vector256.FusedMultiplyAdd(av, b1, c41);
            av = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(av, b0, c50); c51 = Vector256.FusedMultiplyAdd(av, b1, c51);
            a += 6;
            b += 16;
        }
        c00.Store(c + (0 * ldc) + 0); c01.Store(c + (0 * ldc) + 8);
        c10.Store(c + (1 * ldc) + 0); c11.Store(c + (1 * ldc) + 8);
        c20.Store(c + (2 * ldc) + 0); c21.Store(c + (2 * ldc) + 8);
        c30.Store(c + (3 * ldc) + 0); c31.Store(c + (3 * ldc) + 8);
        c40.Store(c + (4 * ldc) + 0); c41.Store(c + (4 * ldc) + 8);
        c50.Store(c + (5 * ldc) + 0); c51.Store(c + (5 * ldc) + 8);
    }

    /// <summary>
    /// The FMA chains of one <c>12 × 32</c> tile of C (row stride <paramref name="ldc"/>) over <paramref name="depth"/>
    /// packed steps, from zero or from C's values: one 512-bit lane per output element, as in <see cref="Kernel256"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel512(int depth, float* a, float* b, float* c, long ldc, bool load)
    {
        Vector512<float> c000 = Ld512(c, ldc, 0, 0, load), c001 = Ld512(c, ldc, 0, 16, load);
        Vector512<float> c010 = Ld512(c, ldc, 1, 0, load), c011 = Ld512(c, ldc, 1, 16, load);
        Vector512<float> c020 = Ld512(c, ldc, 2, 0, load), c021 = Ld512(c, ldc, 2, 16, load);
        Vector512<float> c030 = Ld512(c, ldc, 3, 0, load), c031 = Ld512(c, ldc, 3, 16, load);
        Vector512<float> c040 = Ld512(c, ldc, 4, 0, load), c041 = Ld512(c, ldc, 4, 16, load);
        Vector512<float> c050 = Ld512(c, ldc, 5, 0, load), c051 = Ld512(c, ldc, 5, 16, load);
        Vector512<float> c060 = Ld512(c, ldc, 6, 0, load), c061 = Ld512(c, ldc, 6, 16, load);
        Vector512<float> c070 = Ld512(c, ldc, 7, 0, load), c071 = Ld512(c, ldc, 7, 16, load);
        Vector512<float> c080 = Ld512(c, ldc, 8, 0, load), c081 = Ld512(c, ldc, 8, 16, load);
        Vector512<float> c090 = Ld512(c, ldc, 9, 0, load), c091 = Ld512(c, ldc, 9, 16, load);
        Vector512<float> c100 = Ld512(c, ldc, 10, 0, load), c101 = Ld512(c, ldc, 10, 16, load);
        Vector512<float> c110 = Ld512(c, ldc, 11, 0, load), c111 = Ld512(c, ldc, 11, 16, load);
        for (int p = 0; p < depth; p++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> av;
            av = Vector512.Create(a[0]);
            c000 = Vector512.FusedMultiplyAdd(av, b0, c000); c001 = Vector512.FusedMultiplyAdd(av, b1, c001);
            av = Vector512.Create(a[1]);
            c010 = Vector512.FusedMultiplyAdd(av, b0, c010); c011 = Vector512.FusedMultiplyAdd(av, b1, c011);
            av = Vector512.Create(a[2]);
            c020 = Vector512.FusedMultiplyAdd(av, b0, c020); c021 = Vector512.FusedMultiplyAdd(av, b1, c021);
            av = Vector512.Create(a[3]);
            c030 = Vector512.FusedMultiplyAdd(av, b0, c030); c031 = Vector512.FusedMultiplyAdd(av, b1, c031);
            av = Vector512.Create(a[4]);
            c040 = Vector512.FusedMultiplyAdd(av, b0, c040); c041 = Vector512.FusedMultiplyAdd(av, b1, c041);
            av = Vector512.Create(a[5]);
            c050 = Vector512.FusedMultiplyAdd(av, b0, c050); c051 = Vector512.FusedMultiplyAdd(av, b1, c051);
            av = Vector512.Create(a[6]);
            c060 = Vector512.FusedMultiplyAdd(av, b0, c060); c061 = Vector512.FusedMultiplyAdd(av, b1, c061);
            av = Vector512.Create(a[7]);
            c070 = Vector512.FusedMultiplyAdd(av, b0, c070); c071 = Vector512.FusedMultiplyAdd(av, b1, c071);
            av = Vector512.Create(a[8]);
            c080 = Vector512.FusedMultiplyAdd(av, b0, c080); c081 = Vector512.FusedMultiplyAdd(av, b1, c081);
            av = Vector512.Create(a[9]);
            c090 = Vector512.FusedMultiplyAdd(av, b0, c090); c091 = Vector512.FusedMultiplyAdd(av, b1, c091);
            av = Vector512.Create(a[10]);
            c100 = Vector512.FusedMultiplyAdd(av, b0, c100); c101 = Vector512.FusedMultiplyAdd(av, b1, c101);
            av = Vector512.Create(a[11]);
            c110 = Vector512.FusedMultiplyAdd(av, b0, c110); c111 = Vector512.FusedMultiplyAdd(av, b1, c111);
            a += 12;
            b += 32;
        }
        c000.Store(c + (0 * ldc) + 0); c001.Store(c + (0 * ldc) + 16);
        c010.Store(c + (1 * ldc) + 0); c011.Store(c + (1 * ldc) + 16);
        c020.Store(c + (2 * ldc) + 0); c021.Store(c + (2 * ldc) + 16);
        c030.Store(c + (3 * ldc) + 0); c031.Store(c + (3 * ldc) + 16);
        c040.Store(c + (4 * ldc) + 0); c041.Store(c + (4 * ldc) + 16);
        c050.Store(c + (5 * ldc) + 0); c051.Store(c + (5 * ldc) + 16);
        c060.Store(c + (6 * ldc) + 0); c061.Store(c + (6 * ldc) + 16);
        c070.Store(c + (7 * ldc) + 0); c071.Store(c + (7 * ldc) + 16);
        c080.Store(c + (8 * ldc) + 0); c081.Store(c + (8 * ldc) + 16);
        c090.Store(c + (9 * ldc) + 0); c091.Store(c + (9 * ldc) + 16);
        c100.Store(c + (10 * ldc) + 0); c101.Store(c + (10 * ldc) + 16);
        c110.Store(c + (11 * ldc) + 0); c111.Store(c + (11 * ldc) + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Ld256(float* c, long ldc, int row, int column, bool load)
        => load ? Vector256.Load(c + (row * ldc) + column) : Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Ld512(float* c, long ldc, int row, int column, bool load)
        => load ? Vector512.Load(c + (row * ldc) + column) : Vector512<float>.Zero;
}
