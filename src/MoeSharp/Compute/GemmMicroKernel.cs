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

    /// <summary>Continues the FMA chains of one tile (see <see cref="Kernel256"/>) with the kernel of this machine.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Kernel(int depth, float* a, float* b, float* tile)
    {
        if (Wide) Kernel512(depth, a, b, tile);
        else Kernel256(depth, a, b, tile);
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
    /// Continues the FMA chains of one <c>6 × 16</c> tile held in <paramref name="tile"/> (row-major,
    /// stride 16) over <paramref name="depth"/> packed steps.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel256(int depth, float* a, float* b, float* tile)
    {
        Vector256<float> c00 = Vector256.Load(tile), c01 = Vector256.Load(tile + 8);
        Vector256<float> c10 = Vector256.Load(tile + 16), c11 = Vector256.Load(tile + 24);
        Vector256<float> c20 = Vector256.Load(tile + 32), c21 = Vector256.Load(tile + 40);
        Vector256<float> c30 = Vector256.Load(tile + 48), c31 = Vector256.Load(tile + 56);
        Vector256<float> c40 = Vector256.Load(tile + 64), c41 = Vector256.Load(tile + 72);
        Vector256<float> c50 = Vector256.Load(tile + 80), c51 = Vector256.Load(tile + 88);
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
        c00.Store(tile); c01.Store(tile + 8);
        c10.Store(tile + 16); c11.Store(tile + 24);
        c20.Store(tile + 32); c21.Store(tile + 40);
        c30.Store(tile + 48); c31.Store(tile + 56);
        c40.Store(tile + 64); c41.Store(tile + 72);
        c50.Store(tile + 80); c51.Store(tile + 88);
    }

    /// <summary>
    /// Continues the FMA chains of one <c>12 × 32</c> tile held in <paramref name="tile"/> (row-major, stride 32)
    /// over <paramref name="depth"/> packed steps: one 512-bit lane per output element, as in <see cref="Kernel256"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel512(int depth, float* a, float* b, float* tile)
    {
        Vector512<float> c000 = Vector512.Load(tile + 0), c001 = Vector512.Load(tile + 16);
        Vector512<float> c010 = Vector512.Load(tile + 32), c011 = Vector512.Load(tile + 48);
        Vector512<float> c020 = Vector512.Load(tile + 64), c021 = Vector512.Load(tile + 80);
        Vector512<float> c030 = Vector512.Load(tile + 96), c031 = Vector512.Load(tile + 112);
        Vector512<float> c040 = Vector512.Load(tile + 128), c041 = Vector512.Load(tile + 144);
        Vector512<float> c050 = Vector512.Load(tile + 160), c051 = Vector512.Load(tile + 176);
        Vector512<float> c060 = Vector512.Load(tile + 192), c061 = Vector512.Load(tile + 208);
        Vector512<float> c070 = Vector512.Load(tile + 224), c071 = Vector512.Load(tile + 240);
        Vector512<float> c080 = Vector512.Load(tile + 256), c081 = Vector512.Load(tile + 272);
        Vector512<float> c090 = Vector512.Load(tile + 288), c091 = Vector512.Load(tile + 304);
        Vector512<float> c100 = Vector512.Load(tile + 320), c101 = Vector512.Load(tile + 336);
        Vector512<float> c110 = Vector512.Load(tile + 352), c111 = Vector512.Load(tile + 368);
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
        c000.Store(tile + 0); c001.Store(tile + 16);
        c010.Store(tile + 32); c011.Store(tile + 48);
        c020.Store(tile + 64); c021.Store(tile + 80);
        c030.Store(tile + 96); c031.Store(tile + 112);
        c040.Store(tile + 128); c041.Store(tile + 144);
        c050.Store(tile + 160); c051.Store(tile + 176);
        c060.Store(tile + 192); c061.Store(tile + 208);
        c070.Store(tile + 224); c071.Store(tile + 240);
        c080.Store(tile + 256); c081.Store(tile + 272);
        c090.Store(tile + 288); c091.Store(tile + 304);
        c100.Store(tile + 320); c101.Store(tile + 336);
        c110.Store(tile + 352); c111.Store(tile + 368);
    }
}
