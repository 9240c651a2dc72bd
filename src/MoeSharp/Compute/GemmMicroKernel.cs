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
    /// <summary>Rows of the output tile (broadcast operand).</summary>
    public const int MR = 6;

    /// <summary>Columns of the output tile (two 8-lane vectors).</summary>
    public const int NR = 16;

    /// <summary>
    /// Packs rows <c>[i0, i0+rows)</c> of the logical left operand <c>A(i, p)</c> (element at
    /// <c>src[i*rowStride + p*colStride]</c>) into <c>[P][MR]</c> micro-panel order, zero-padding
    /// missing rows.
    /// </summary>
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
    /// Continues the FMA chains of one <c>MR × NR</c> tile held in <paramref name="tile"/> (row-major,
    /// stride <see cref="NR"/>) over <paramref name="depth"/> packed steps.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel(int depth, float* a, float* b, float* tile)
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
            a += MR;
            b += NR;
        }
        c00.Store(tile); c01.Store(tile + 8);
        c10.Store(tile + 16); c11.Store(tile + 24);
        c20.Store(tile + 32); c21.Store(tile + 40);
        c30.Store(tile + 48); c31.Store(tile + 56);
        c40.Store(tile + 64); c41.Store(tile + 72);
        c50.Store(tile + 80); c51.Store(tile + 88);
    }
}
