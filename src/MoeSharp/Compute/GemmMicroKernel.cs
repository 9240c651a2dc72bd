using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoeSharp.Compute;

/// <summary>
/// The register-blocked inner kernels behind <see cref="HostGemm"/>, and (GemmMicroKernel.Packing.cs) the routines that
/// pack their operands.
/// </summary>
/// <remarks>
/// Every output element is computed by one chain <c>c = fma(a[p], b[p], c)</c> for <c>p = 0 … P-1</c>
/// in ascending order, starting from zero or from the caller's value. The kernel keeps one element per
/// vector lane and never splits the <c>p</c> loop across lanes, so neither the tile an element lands
/// in, nor its lane, nor the thread that runs it can change the operations it sees: that is what makes
/// the GEMM row-invariant and deterministic. Panels are zero-padded to whole tiles; padded lanes compute
/// values that are never stored.
/// </remarks>
internal static unsafe partial class GemmMicroKernel
{
    /// <summary>
    /// Whether the 512-bit kernel runs (AVX-512F present): 12 × 32 tiles in 24 of the 32 vector registers, half the
    /// instructions of the 256-bit kernel per FMA and fewer broadcasts per FMA. Otherwise 6 × 16 tiles of 256-bit
    /// vectors (AVX2 + FMA, or whatever <see cref="Vector256"/> maps to), or of 128-bit ones (<see cref="Narrow"/>).
    /// </summary>
    public static readonly bool Wide =
        Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported;

    /// <summary>
    /// Whether the 6 × 16 tile runs in 128-bit vectors (<see cref="Kernel128"/>): where <see cref="Vector256"/> is not
    /// hardware accelerated but <see cref="Vector128"/> is, as on ARM64 (NEON), whose 32 registers hold the 24
    /// accumulators. There <see cref="Kernel256"/>'s vectors would be built from pairs of 128-bit halves through calls.
    /// </summary>
    public static readonly bool Narrow = !Vector256.IsHardwareAccelerated && Vector128.IsHardwareAccelerated;

    /// <summary>Rows of the output tile (broadcast operand).</summary>
    public static readonly int MR = Wide ? 12 : 6;

    /// <summary>Columns of the output tile (two vectors).</summary>
    public static readonly int NR = Wide ? 32 : 16;

    /// <summary>
    /// The deepest reduction chunk of the shared pass and of experts owned by a thread (<c>HostGemm.ChunkDepth</c> cuts
    /// a product's depth into even chunks of at most this). At 512 bits 1,024, so that every depth up to 1,024 (the
    /// layer shapes' and 1024³) is one chunk, as the private grid has always run them: a row block of 144 rows packs
    /// 576 KiB of A, and a B micro-panel of 128 KiB streams from L2. Each C tile is then loaded and stored once rather
    /// than once a chunk, and each task packs and waits once. On the dev machine's Zen 5 (1 MiB L2), 1024 against the
    /// former 384, builds alternating (bench/RESULTS-cpu.md, stop 39): 2 threads, five rounds, 1024³ 89 / 86 / 86 % of
    /// the adjacent FMA peak against 84 / 82 / 80, the 16 T 2048 experts 81 / 81 / 82 against 76 / 74 / 81; one
    /// thread, three rounds, 1024³ 93 / 92 / 91 against 88 / 84 / 85. The kernel alone reads the same at every depth
    /// (stop 35), and on the GPU machine's Xeon whole-depth blocks of the private grid ran ahead of chunks of 384 and
    /// 512 (stop 31). At 256 bits KC stays 256: a B micro-panel of 16 KiB and the A one of 6 KiB fit a 32 KiB L1.
    /// </summary>
    public static readonly int KC = Wide ? 1024 : 256;

    /// <summary>
    /// Runs the FMA chains of one full <c>MR × NR</c> tile of C (row stride <paramref name="ldc"/>) over
    /// <paramref name="depth"/> packed steps with the kernel of this machine, from zero or, when
    /// <paramref name="load"/>, continuing from C's values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Kernel(int depth, float* a, float* b, float* c, long ldc, bool load)
    {
        if (Wide)
            Kernel512(depth, a, b, c, ldc, load);
        else if (Narrow)
            Kernel128(depth, a, b, c, ldc, load);
        else
            Kernel256(depth, a, b, c, ldc, load);
    }

    /// <summary>
    /// Runs the FMA chains of the first <paramref name="rows"/> rows (at most <see cref="MR"/>) of a tile whose C
    /// holds a whole tile of rows (the caller's tile buffer, or C itself, row stride <paramref name="ldc"/>), like
    /// <see cref="Kernel"/>. At 512 bits up to 8 rows run in groups of 4 (<see cref="Kernel512Rows4"/>, through
    /// <see cref="Kernel512Strided"/> with the packed panel's strides), so an edge panel skips most of its padding
    /// rows: 256 rows are 21 whole panels and 4 rows, whose full-tile kernel spent 8 padding rows, 3 % of the product.
    /// Rows of a group past <paramref name="rows"/> compute values nobody stores. More rows, and every tile at 256
    /// bits, run the whole tile (<see cref="Kernel"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void EdgeKernel(int rows, int depth, float* a, float* b, float* c, long ldc, bool load)
    {
        if (!Wide || rows > 8)
        {
            Kernel(depth, a, b, c, ldc, load);
            return;
        }
        // The packed panel's strides (rows 1 apart, steps MR; B's steps NR): Kernel512Strided's groups of 4 rows.
        Kernel512Strided(rows, depth, a, 1, MR, b, NR, c, ldc, load);
    }

    /// <summary>
    /// The FMA chains of one <c>6 × 16</c> tile of C (row stride <paramref name="ldc"/>) over <paramref name="depth"/>
    /// packed steps, from zero or from C's values.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Kernel256(int depth, float* a, float* b, float* c, long ldc, bool load)
    {
        Vector256<float> c00 = Ld256(c, ldc, 0, 0, load),
            c01 = Ld256(c, ldc, 0, 8, load);
        Vector256<float> c10 = Ld256(c, ldc, 1, 0, load),
            c11 = Ld256(c, ldc, 1, 8, load);
        Vector256<float> c20 = Ld256(c, ldc, 2, 0, load),
            c21 = Ld256(c, ldc, 2, 8, load);
        Vector256<float> c30 = Ld256(c, ldc, 3, 0, load),
            c31 = Ld256(c, ldc, 3, 8, load);
        Vector256<float> c40 = Ld256(c, ldc, 4, 0, load),
            c41 = Ld256(c, ldc, 4, 8, load);
        Vector256<float> c50 = Ld256(c, ldc, 5, 0, load),
            c51 = Ld256(c, ldc, 5, 8, load);
        for (int p = 0; p < depth; p++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> av = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(av, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(av, b1, c01);
            av = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(av, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(av, b1, c11);
            av = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(av, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(av, b1, c21);
            av = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(av, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(av, b1, c31);
            av = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(av, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(av, b1, c41);
            av = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(av, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(av, b1, c51);
            a += 6;
            b += 16;
        }
        c00.Store(c + (0 * ldc) + 0);
        c01.Store(c + (0 * ldc) + 8);
        c10.Store(c + (1 * ldc) + 0);
        c11.Store(c + (1 * ldc) + 8);
        c20.Store(c + (2 * ldc) + 0);
        c21.Store(c + (2 * ldc) + 8);
        c30.Store(c + (3 * ldc) + 0);
        c31.Store(c + (3 * ldc) + 8);
        c40.Store(c + (4 * ldc) + 0);
        c41.Store(c + (4 * ldc) + 8);
        c50.Store(c + (5 * ldc) + 0);
        c51.Store(c + (5 * ldc) + 8);
    }

    /// <summary>
    /// <see cref="Kernel256"/>'s <c>6 × 16</c> tile over the same packed panels in 128-bit vectors, four a row: the
    /// same chains, so the same bits, for machines whose widest accelerated vector is 128 bits (<see cref="Narrow"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Kernel128(int depth, float* a, float* b, float* c, long ldc, bool load)
    {
        Vector128<float> c00 = Ld128(c, ldc, 0, 0, load),
            c01 = Ld128(c, ldc, 0, 4, load),
            c02 = Ld128(c, ldc, 0, 8, load),
            c03 = Ld128(c, ldc, 0, 12, load);
        Vector128<float> c10 = Ld128(c, ldc, 1, 0, load),
            c11 = Ld128(c, ldc, 1, 4, load),
            c12 = Ld128(c, ldc, 1, 8, load),
            c13 = Ld128(c, ldc, 1, 12, load);
        Vector128<float> c20 = Ld128(c, ldc, 2, 0, load),
            c21 = Ld128(c, ldc, 2, 4, load),
            c22 = Ld128(c, ldc, 2, 8, load),
            c23 = Ld128(c, ldc, 2, 12, load);
        Vector128<float> c30 = Ld128(c, ldc, 3, 0, load),
            c31 = Ld128(c, ldc, 3, 4, load),
            c32 = Ld128(c, ldc, 3, 8, load),
            c33 = Ld128(c, ldc, 3, 12, load);
        Vector128<float> c40 = Ld128(c, ldc, 4, 0, load),
            c41 = Ld128(c, ldc, 4, 4, load),
            c42 = Ld128(c, ldc, 4, 8, load),
            c43 = Ld128(c, ldc, 4, 12, load);
        Vector128<float> c50 = Ld128(c, ldc, 5, 0, load),
            c51 = Ld128(c, ldc, 5, 4, load),
            c52 = Ld128(c, ldc, 5, 8, load),
            c53 = Ld128(c, ldc, 5, 12, load);
        for (int p = 0; p < depth; p++)
        {
            Vector128<float> b0 = Vector128.Load(b + 0);
            Vector128<float> b1 = Vector128.Load(b + 4);
            Vector128<float> b2 = Vector128.Load(b + 8);
            Vector128<float> b3 = Vector128.Load(b + 12);
            Vector128<float> a0 = Vector128.Create(a[0]);
            c00 = Vector128.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector128.FusedMultiplyAdd(a0, b1, c01);
            c02 = Vector128.FusedMultiplyAdd(a0, b2, c02);
            c03 = Vector128.FusedMultiplyAdd(a0, b3, c03);
            Vector128<float> a1 = Vector128.Create(a[1]);
            c10 = Vector128.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector128.FusedMultiplyAdd(a1, b1, c11);
            c12 = Vector128.FusedMultiplyAdd(a1, b2, c12);
            c13 = Vector128.FusedMultiplyAdd(a1, b3, c13);
            Vector128<float> a2 = Vector128.Create(a[2]);
            c20 = Vector128.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector128.FusedMultiplyAdd(a2, b1, c21);
            c22 = Vector128.FusedMultiplyAdd(a2, b2, c22);
            c23 = Vector128.FusedMultiplyAdd(a2, b3, c23);
            Vector128<float> a3 = Vector128.Create(a[3]);
            c30 = Vector128.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector128.FusedMultiplyAdd(a3, b1, c31);
            c32 = Vector128.FusedMultiplyAdd(a3, b2, c32);
            c33 = Vector128.FusedMultiplyAdd(a3, b3, c33);
            Vector128<float> a4 = Vector128.Create(a[4]);
            c40 = Vector128.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector128.FusedMultiplyAdd(a4, b1, c41);
            c42 = Vector128.FusedMultiplyAdd(a4, b2, c42);
            c43 = Vector128.FusedMultiplyAdd(a4, b3, c43);
            Vector128<float> a5 = Vector128.Create(a[5]);
            c50 = Vector128.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector128.FusedMultiplyAdd(a5, b1, c51);
            c52 = Vector128.FusedMultiplyAdd(a5, b2, c52);
            c53 = Vector128.FusedMultiplyAdd(a5, b3, c53);
            a += 6;
            b += 16;
        }
        c00.Store(c + (0 * ldc) + 0);
        c01.Store(c + (0 * ldc) + 4);
        c02.Store(c + (0 * ldc) + 8);
        c03.Store(c + (0 * ldc) + 12);
        c10.Store(c + (1 * ldc) + 0);
        c11.Store(c + (1 * ldc) + 4);
        c12.Store(c + (1 * ldc) + 8);
        c13.Store(c + (1 * ldc) + 12);
        c20.Store(c + (2 * ldc) + 0);
        c21.Store(c + (2 * ldc) + 4);
        c22.Store(c + (2 * ldc) + 8);
        c23.Store(c + (2 * ldc) + 12);
        c30.Store(c + (3 * ldc) + 0);
        c31.Store(c + (3 * ldc) + 4);
        c32.Store(c + (3 * ldc) + 8);
        c33.Store(c + (3 * ldc) + 12);
        c40.Store(c + (4 * ldc) + 0);
        c41.Store(c + (4 * ldc) + 4);
        c42.Store(c + (4 * ldc) + 8);
        c43.Store(c + (4 * ldc) + 12);
        c50.Store(c + (5 * ldc) + 0);
        c51.Store(c + (5 * ldc) + 4);
        c52.Store(c + (5 * ldc) + 8);
        c53.Store(c + (5 * ldc) + 12);
    }

    /// <summary>
    /// The FMA chains of one <c>12 × 32</c> tile of C (row stride <paramref name="ldc"/>) over <paramref name="depth"/>
    /// packed steps, from zero or from C's values: one 512-bit lane per output element, as in <see cref="Kernel256"/>.
    /// </summary>
    // Never inlined, nor are the other tile kernels: their own IL is small (the steps are inlinees), so a caller
    // recompiled at tier 1 with a profile inlined Kernel512 and, out of inlining budget, left its 24 accumulators in
    // memory: a lab's loop of tiles fell from 95 % to 14 % of the FMA probe once tiered up (bench/RESULTS-cpu.md, stop
    // 38). The library's callers are compiled once with full optimization and called it; this keeps it so.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Kernel512(int depth, float* a, float* b, float* c, long ldc, bool load)
    {
        LoadTile512(out Tile512 t, c, ldc, load);
        // Two steps a turn (an odd depth's last step after them), no prefetches, the loop ending on B's pointer: 40
        // instructions per 24 FMAs, where the loop that prefetched A and B ahead (until stop 36) issued 47. On the GPU
        // machine's Xeon the cores spend long stretches in a state where anything beside FMAs issues slower (a
        // register-only loop padded with 20 integer instructions per 24 FMAs ran at about 82 % of the bare FMA rate
        // there, 98 % otherwise); there this loop alone ran at 71–76 % of the FMA probe against the old one's 67–71 %
        // (one step a turn without prefetches: 67 %), level with it in the other state and on Zen 5
        // (bench/RESULTS-cpu.md, stop 36). The lines it reads are in L2, where the hardware prefetchers follow them.
        float* pairsEnd = b + ((long)(depth & ~1) * 32);
        while (b < pairsEnd)
        {
            Step512(ref t, a, b, 0);
            Step512(ref t, a, b, 1);
            a += 24;
            b += 64;
        }
        if ((depth & 1) != 0)
            Step512(ref t, a, b, 0);
        StoreTile512(ref t, c, ldc);
    }

    /// <summary>
    /// Step <paramref name="step"/> (0 or 1) past the packed pointers of <see cref="Kernel512"/>: a constant once
    /// inlined, so the second step of a turn reads at fixed offsets from the same pointers. The JIT keeps
    /// <paramref name="t"/>'s 24 vectors in registers (a local passed by reference to an inlined method).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step512(ref Tile512 t, float* a, float* b, int step) =>
        Fma512(
            ref t,
            b,
            step * 32,
            a + (step * 12) + 0,
            a + (step * 12) + 1,
            a + (step * 12) + 2,
            a + (step * 12) + 3,
            a + (step * 12) + 4,
            a + (step * 12) + 5,
            a + (step * 12) + 6,
            a + (step * 12) + 7,
            a + (step * 12) + 8,
            a + (step * 12) + 9,
            a + (step * 12) + 10,
            a + (step * 12) + 11
        );

    /// <summary>
    /// One step of every 12 × 32 kernel: the step's 32 B values at <c>b + bOffset</c> (packed, or where B lies) times
    /// the A value of row <c>r</c> at <c>r{rr}</c>, into <paramref name="t"/>. Each kernel's step names only where its
    /// operands lie; once inlined, every address is one <c>[base + index·4 + displacement]</c> operand. B comes as a
    /// pointer and an offset, not as one pointer the caller adds up: the JIT keeps an argument it reads twice in a
    /// register of its own, and a packed kernel's second step then spent a <c>lea</c> a turn on it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma512(
        ref Tile512 t,
        float* b,
        long bOffset,
        float* r00,
        float* r01,
        float* r02,
        float* r03,
        float* r04,
        float* r05,
        float* r06,
        float* r07,
        float* r08,
        float* r09,
        float* r10,
        float* r11
    )
    {
        Vector512<float> b0 = Vector512.Load(b + bOffset);
        Vector512<float> b1 = Vector512.Load(b + bOffset + 16);
        Vector512<float> av;
        av = Vector512.Create(*r00);
        t.C000 = Vector512.FusedMultiplyAdd(av, b0, t.C000);
        t.C001 = Vector512.FusedMultiplyAdd(av, b1, t.C001);
        av = Vector512.Create(*r01);
        t.C010 = Vector512.FusedMultiplyAdd(av, b0, t.C010);
        t.C011 = Vector512.FusedMultiplyAdd(av, b1, t.C011);
        av = Vector512.Create(*r02);
        t.C020 = Vector512.FusedMultiplyAdd(av, b0, t.C020);
        t.C021 = Vector512.FusedMultiplyAdd(av, b1, t.C021);
        av = Vector512.Create(*r03);
        t.C030 = Vector512.FusedMultiplyAdd(av, b0, t.C030);
        t.C031 = Vector512.FusedMultiplyAdd(av, b1, t.C031);
        av = Vector512.Create(*r04);
        t.C040 = Vector512.FusedMultiplyAdd(av, b0, t.C040);
        t.C041 = Vector512.FusedMultiplyAdd(av, b1, t.C041);
        av = Vector512.Create(*r05);
        t.C050 = Vector512.FusedMultiplyAdd(av, b0, t.C050);
        t.C051 = Vector512.FusedMultiplyAdd(av, b1, t.C051);
        av = Vector512.Create(*r06);
        t.C060 = Vector512.FusedMultiplyAdd(av, b0, t.C060);
        t.C061 = Vector512.FusedMultiplyAdd(av, b1, t.C061);
        av = Vector512.Create(*r07);
        t.C070 = Vector512.FusedMultiplyAdd(av, b0, t.C070);
        t.C071 = Vector512.FusedMultiplyAdd(av, b1, t.C071);
        av = Vector512.Create(*r08);
        t.C080 = Vector512.FusedMultiplyAdd(av, b0, t.C080);
        t.C081 = Vector512.FusedMultiplyAdd(av, b1, t.C081);
        av = Vector512.Create(*r09);
        t.C090 = Vector512.FusedMultiplyAdd(av, b0, t.C090);
        t.C091 = Vector512.FusedMultiplyAdd(av, b1, t.C091);
        av = Vector512.Create(*r10);
        t.C100 = Vector512.FusedMultiplyAdd(av, b0, t.C100);
        t.C101 = Vector512.FusedMultiplyAdd(av, b1, t.C101);
        av = Vector512.Create(*r11);
        t.C110 = Vector512.FusedMultiplyAdd(av, b0, t.C110);
        t.C111 = Vector512.FusedMultiplyAdd(av, b1, t.C111);
    }

    /// <summary>A tile's accumulators from C (row stride <paramref name="ldc"/>) when <paramref name="load"/>, else
    /// zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadTile512(out Tile512 t, float* c, long ldc, bool load)
    {
        t.C000 = Ld512(c, ldc, 0, 0, load);
        t.C001 = Ld512(c, ldc, 0, 16, load);
        t.C010 = Ld512(c, ldc, 1, 0, load);
        t.C011 = Ld512(c, ldc, 1, 16, load);
        t.C020 = Ld512(c, ldc, 2, 0, load);
        t.C021 = Ld512(c, ldc, 2, 16, load);
        t.C030 = Ld512(c, ldc, 3, 0, load);
        t.C031 = Ld512(c, ldc, 3, 16, load);
        t.C040 = Ld512(c, ldc, 4, 0, load);
        t.C041 = Ld512(c, ldc, 4, 16, load);
        t.C050 = Ld512(c, ldc, 5, 0, load);
        t.C051 = Ld512(c, ldc, 5, 16, load);
        t.C060 = Ld512(c, ldc, 6, 0, load);
        t.C061 = Ld512(c, ldc, 6, 16, load);
        t.C070 = Ld512(c, ldc, 7, 0, load);
        t.C071 = Ld512(c, ldc, 7, 16, load);
        t.C080 = Ld512(c, ldc, 8, 0, load);
        t.C081 = Ld512(c, ldc, 8, 16, load);
        t.C090 = Ld512(c, ldc, 9, 0, load);
        t.C091 = Ld512(c, ldc, 9, 16, load);
        t.C100 = Ld512(c, ldc, 10, 0, load);
        t.C101 = Ld512(c, ldc, 10, 16, load);
        t.C110 = Ld512(c, ldc, 11, 0, load);
        t.C111 = Ld512(c, ldc, 11, 16, load);
    }

    /// <summary>A tile's accumulators into C (row stride <paramref name="ldc"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTile512(ref Tile512 t, float* c, long ldc)
    {
        t.C000.Store(c + (0 * ldc) + 0);
        t.C001.Store(c + (0 * ldc) + 16);
        t.C010.Store(c + (1 * ldc) + 0);
        t.C011.Store(c + (1 * ldc) + 16);
        t.C020.Store(c + (2 * ldc) + 0);
        t.C021.Store(c + (2 * ldc) + 16);
        t.C030.Store(c + (3 * ldc) + 0);
        t.C031.Store(c + (3 * ldc) + 16);
        t.C040.Store(c + (4 * ldc) + 0);
        t.C041.Store(c + (4 * ldc) + 16);
        t.C050.Store(c + (5 * ldc) + 0);
        t.C051.Store(c + (5 * ldc) + 16);
        t.C060.Store(c + (6 * ldc) + 0);
        t.C061.Store(c + (6 * ldc) + 16);
        t.C070.Store(c + (7 * ldc) + 0);
        t.C071.Store(c + (7 * ldc) + 16);
        t.C080.Store(c + (8 * ldc) + 0);
        t.C081.Store(c + (8 * ldc) + 16);
        t.C090.Store(c + (9 * ldc) + 0);
        t.C091.Store(c + (9 * ldc) + 16);
        t.C100.Store(c + (10 * ldc) + 0);
        t.C101.Store(c + (10 * ldc) + 16);
        t.C110.Store(c + (11 * ldc) + 0);
        t.C111.Store(c + (11 * ldc) + 16);
    }

    /// <summary>The 24 accumulators of a <c>12 × 32</c> tile: row <c>r</c>'s two vectors are <c>C{rr}0</c> and
    /// <c>C{rr}1</c>, <c>rr</c> its two digits.</summary>
    private struct Tile512
    {
        public Vector512<float> C000;
        public Vector512<float> C001;
        public Vector512<float> C010;
        public Vector512<float> C011;
        public Vector512<float> C020;
        public Vector512<float> C021;
        public Vector512<float> C030;
        public Vector512<float> C031;
        public Vector512<float> C040;
        public Vector512<float> C041;
        public Vector512<float> C050;
        public Vector512<float> C051;
        public Vector512<float> C060;
        public Vector512<float> C061;
        public Vector512<float> C070;
        public Vector512<float> C071;
        public Vector512<float> C080;
        public Vector512<float> C081;
        public Vector512<float> C090;
        public Vector512<float> C091;
        public Vector512<float> C100;
        public Vector512<float> C101;
        public Vector512<float> C110;
        public Vector512<float> C111;
    }

    /// <summary>
    /// The FMA chains of 4 rows by 32 columns over <paramref name="depth"/> steps, from zero or from C's values: row
    /// <c>r</c>'s A value at step <c>p</c> is <c>a[r·aRowStride + p·aStepStride]</c> and the step's B values are at
    /// <c>b + p·ldb</c> (packed panels: rows 1 and steps <see cref="MR"/> apart, B's steps <see cref="NR"/>; see
    /// <see cref="Kernel512Strided"/> for operands where they lie). The same chains as <see cref="Kernel512"/>'s rows.
    /// Its 8 accumulators just cover two FMA units of 4 cycles' latency.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Kernel512Rows4(
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
        long s2 = 2 * aRowStride,
            s3 = 3 * aRowStride;
        Vector512<float> c000 = Ld512(c, ldc, 0, 0, load),
            c001 = Ld512(c, ldc, 0, 16, load);
        Vector512<float> c010 = Ld512(c, ldc, 1, 0, load),
            c011 = Ld512(c, ldc, 1, 16, load);
        Vector512<float> c020 = Ld512(c, ldc, 2, 0, load),
            c021 = Ld512(c, ldc, 2, 16, load);
        Vector512<float> c030 = Ld512(c, ldc, 3, 0, load),
            c031 = Ld512(c, ldc, 3, 16, load);
        float* end = b + ((long)depth * ldb);
        while (b < end)
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
            av = Vector512.Create(a[s2]);
            c020 = Vector512.FusedMultiplyAdd(av, b0, c020);
            c021 = Vector512.FusedMultiplyAdd(av, b1, c021);
            av = Vector512.Create(a[s3]);
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Ld128(float* c, long ldc, int row, int column, bool load) =>
        load ? Vector128.Load(c + (row * ldc) + column) : Vector128<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Ld256(float* c, long ldc, int row, int column, bool load) =>
        load ? Vector256.Load(c + (row * ldc) + column) : Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Ld512(float* c, long ldc, int row, int column, bool load) =>
        load ? Vector512.Load(c + (row * ldc) + column) : Vector512<float>.Zero;
}
