namespace MoeSharp.Compute;

/// <summary>
/// Float32 matrix products on the host: managed, vectorized (512-bit FMA where AVX-512F is present, else 256-bit),
/// blocked for cache and parallel over row and column blocks. Row-major spans in, row-major span out, as in
/// <c>TensorPrimitives</c>.
/// </summary>
/// <remarks>
/// <para>
/// <b>Row invariance.</b> Every output element is one fused multiply-add chain over the reduction index
/// in ascending order: <c>c = 0</c> (or the caller's value when <c>accumulate</c>), then
/// <c>c = fma(a_p, b_p, c)</c> for <c>p = 0, 1, …</c>. No lane or tree reduction and no split of the
/// reduction across threads is ever used, so an element's bits depend only on its own operands: a row
/// of <see cref="MatMulTransposeB"/> or <see cref="MatMul"/> is bitwise identical whether it is computed
/// alone or among 10,000 rows, on any number of threads, with any blocking.
/// </para>
/// <para>
/// <b>Determinism of weight gradients.</b> <see cref="MatMulTransposeA"/> reduces over the token
/// dimension in ascending token order on one thread per output element, so its result is a fixed
/// function of its inputs regardless of threading.
/// </para>
/// </remarks>
internal static unsafe class HostGemm
{
    private const int DefaultMC = 72; // 12 micro-panels of 6 rows or 6 of 12: the A block stays in L2.
    private const int DefaultNC = 256; // 16 micro-panels of 16 columns or 8 of 32 per task.
    private static readonly int DefaultKC = GemmMicroKernel.KC; // depth of one packed block.
    private const long SequentialFlops = 1L << 16; // below this, threads cost more than they save.

    /// <summary>
    /// <c>C[M, N] = A[M, K] · B[N, K]ᵀ</c> (the linear layer <c>x · Wᵀ</c>), or <c>C += …</c> when
    /// <paramref name="accumulate"/>.
    /// </summary>
    /// <param name="a">A: [M, K], row-major.</param>
    /// <param name="b">B: [N, K], row-major.</param>
    /// <param name="c">C: [M, N], row-major.</param>
    /// <param name="m">Rows of A and C.</param>
    /// <param name="n">Rows of B, columns of C.</param>
    /// <param name="k">Reduction length.</param>
    /// <param name="accumulate">Continue from C's values instead of zero.</param>
    /// <param name="maxDegreeOfParallelism">Threads to use (-1: <see cref="HostThreads.Current"/>). Never changes the
    /// result.</param>
    /// <exception cref="ArgumentException">A span's length does not match its shape.</exception>
    public static void MatMulTransposeB(
        ReadOnlySpan<float> a,
        ReadOnlySpan<float> b,
        Span<float> c,
        int m,
        int n,
        int k,
        bool accumulate = false,
        int maxDegreeOfParallelism = -1
    )
    {
        Validate(a, b, c, m, n, k, "[M, K]", "[N, K]");
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            Run(pa, k, 1, pb, 1, k, pc, m, n, k, accumulate, DefaultMC, DefaultNC, DefaultKC, maxDegreeOfParallelism);
        }
    }

    /// <summary><c>C[M, N] = A[M, K] · B[K, N]</c> (input gradients <c>dy · W</c>), or <c>C += …</c>.</summary>
    /// <param name="a">A: [M, K], row-major.</param>
    /// <param name="b">B: [K, N], row-major.</param>
    /// <param name="c">C: [M, N], row-major.</param>
    /// <param name="m">Rows of A and C.</param>
    /// <param name="n">Columns of B and C.</param>
    /// <param name="k">Reduction length.</param>
    /// <param name="accumulate">Continue from C's values instead of zero.</param>
    /// <param name="maxDegreeOfParallelism">Threads to use (-1: <see cref="HostThreads.Current"/>). Never changes the
    /// result.</param>
    /// <exception cref="ArgumentException">A span's length does not match its shape.</exception>
    public static void MatMul(
        ReadOnlySpan<float> a,
        ReadOnlySpan<float> b,
        Span<float> c,
        int m,
        int n,
        int k,
        bool accumulate = false,
        int maxDegreeOfParallelism = -1
    )
    {
        Validate(a, b, c, m, n, k, "[M, K]", "[K, N]");
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            Run(pa, k, 1, pb, n, 1, pc, m, n, k, accumulate, DefaultMC, DefaultNC, DefaultKC, maxDegreeOfParallelism);
        }
    }

    /// <summary>
    /// <c>C[M, N] = A[K, M]ᵀ · B[K, N]</c> (weight gradients <c>dyᵀ · x</c>, reducing over the K tokens in
    /// ascending order), or <c>C += …</c>.
    /// </summary>
    /// <param name="a">A: [K, M], row-major.</param>
    /// <param name="b">B: [K, N], row-major.</param>
    /// <param name="c">C: [M, N], row-major.</param>
    /// <param name="m">Columns of A, rows of C.</param>
    /// <param name="n">Columns of B and C.</param>
    /// <param name="k">Reduction length (rows of A and B).</param>
    /// <param name="accumulate">Continue from C's values instead of zero.</param>
    /// <param name="maxDegreeOfParallelism">Threads to use (-1: <see cref="HostThreads.Current"/>). Never changes the
    /// result.</param>
    /// <exception cref="ArgumentException">A span's length does not match its shape.</exception>
    public static void MatMulTransposeA(
        ReadOnlySpan<float> a,
        ReadOnlySpan<float> b,
        Span<float> c,
        int m,
        int n,
        int k,
        bool accumulate = false,
        int maxDegreeOfParallelism = -1
    )
    {
        Validate(a, b, c, m, n, k, "[K, M]", "[K, N]");
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            Run(pa, 1, m, pb, n, 1, pc, m, n, k, accumulate, DefaultMC, DefaultNC, DefaultKC, maxDegreeOfParallelism);
        }
    }

    /// <summary>
    /// <see cref="MatMulTransposeB"/> with explicit block sizes, so tests can show that the partitioning
    /// never changes a bit of the result.
    /// </summary>
    internal static void MatMulTransposeBBlocked(
        ReadOnlySpan<float> a,
        ReadOnlySpan<float> b,
        Span<float> c,
        int m,
        int n,
        int k,
        int mc,
        int nc,
        int kc,
        int maxDegreeOfParallelism
    )
    {
        Validate(a, b, c, m, n, k, "[M, K]", "[N, K]");
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            Run(pa, k, 1, pb, 1, k, pc, m, n, k, false, mc, nc, kc, maxDegreeOfParallelism);
        }
    }

    private static void Validate(
        ReadOnlySpan<float> a,
        ReadOnlySpan<float> b,
        Span<float> c,
        int m,
        int n,
        int k,
        string aShape,
        string bShape
    )
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        Check(a.Length, (long)m * k, nameof(a), aShape, m, n, k);
        Check(b.Length, (long)n * k, nameof(b), bShape, m, n, k);
        Check(c.Length, (long)m * n, nameof(c), "[M, N]", m, n, k);

        static void Check(int actual, long expected, string name, string shape, int m, int n, int k)
        {
            if (actual != expected)
            {
                throw new ArgumentException(
                    $"{name} has {actual} elements but {shape} with M={m}, N={n}, K={k} needs {expected}",
                    name
                );
            }
        }
    }

    /// <summary>
    /// The blocked driver. The left operand is <c>A(i, p) = a[i*aRow + p*aCol]</c>, the right one
    /// <c>B(p, j) = b[p*bP + j*bJ]</c>; C is row-major <c>[m, n]</c>.
    /// </summary>
    private static void Run(
        float* a,
        long aRow,
        long aCol,
        float* b,
        long bP,
        long bJ,
        float* c,
        int m,
        int n,
        int k,
        bool accumulate,
        int mc,
        int nc,
        int kc,
        int maxDegreeOfParallelism
    )
    {
        if (m == 0 || n == 0)
            return;
        if (k == 0)
        {
            if (!accumulate)
                new Span<float>(c, checked(m * n)).Clear();
            return;
        }

        mc = Math.Max(GemmMicroKernel.MR, mc / GemmMicroKernel.MR * GemmMicroKernel.MR);
        nc = Math.Max(GemmMicroKernel.NR, nc / GemmMicroKernel.NR * GemmMicroKernel.NR);
        kc = Math.Max(1, kc);
        if (maxDegreeOfParallelism < 1)
            maxDegreeOfParallelism = HostThreads.Current;
        bool sequential = maxDegreeOfParallelism == 1 || (long)m * n * k < SequentialFlops;
        if (!sequential)
        {
            // Small products (an expert's few hundred rows) would leave threads idle: narrow the blocks until every
            // thread has two tasks. Rows first, down to two micro-panels: every task packs the A rows of its block for
            // its own columns, so narrower column blocks pack A more often while shorter row blocks cost nothing extra
            // (B is packed once); then columns down to two micro-panels, then rows down to one.
            int wanted = 2 * maxDegreeOfParallelism;
            int mr = GemmMicroKernel.MR,
                nr = GemmMicroKernel.NR;
            while (Blocks(m, mc) * Blocks(n, nc) < wanted && mc > 2 * mr)
                mc = Math.Max(2 * mr, mc / 2);
            while (Blocks(m, mc) * Blocks(n, nc) < wanted && nc > 2 * nr)
                nc = Math.Max(2 * nr, nc / 2);
            while (Blocks(m, mc) * Blocks(n, nc) < wanted && mc > mr)
                mc = Math.Max(mr, mc / 2);
            mc = Math.Max(GemmMicroKernel.MR, mc / GemmMicroKernel.MR * GemmMicroKernel.MR);
            nc = Math.Max(GemmMicroKernel.NR, nc / GemmMicroKernel.NR * GemmMicroKernel.NR);
        }
        var options = new ParallelOptions { MaxDegreeOfParallelism = sequential ? 1 : maxDegreeOfParallelism };

        // B is packed once for the whole call ([panel][K][NR]) and shared by every task.
        int nPanels = (n + GemmMicroKernel.NR - 1) / GemmMicroKernel.NR;
        long panelStride = (long)k * GemmMicroKernel.NR;
        using GemmScratch.Lease bLease = GemmScratch.Rent(GemmScratch.Slot.PackedB, nPanels * panelStride);
        nint b0 = (nint)b,
            bPackAddr = (nint)bLease.Pointer;
        Parallel.For(
            0,
            nPanels,
            options,
            jp =>
            {
                int j0 = jp * GemmMicroKernel.NR;
                GemmMicroKernel.PackB(
                    (float*)b0,
                    bP,
                    bJ,
                    j0,
                    Math.Min(GemmMicroKernel.NR, n - j0),
                    0,
                    k,
                    (float*)bPackAddr + (jp * panelStride)
                );
            }
        );

        int mBlocks = (m + mc - 1) / mc;
        int nBlocks = (n + nc - 1) / nc;
        nint aAddr = (nint)a,
            cAddr = (nint)c;
        Parallel.For(
            0,
            mBlocks * nBlocks,
            options,
            task =>
            {
                int i0 = task / nBlocks * mc;
                int j0 = task % nBlocks * nc;
                ComputeBlock(
                    (float*)aAddr,
                    aRow,
                    aCol,
                    (float*)bPackAddr,
                    panelStride,
                    (float*)cAddr,
                    n,
                    k,
                    i0,
                    Math.Min(mc, m - i0),
                    j0,
                    Math.Min(nc, n - j0),
                    accumulate,
                    kc
                );
            }
        );
    }

    private static int Blocks(int extent, int block) => (extent + block - 1) / block;

    /// <summary>One task: the C block <c>[i0, i0+rows) × [j0, j0+cols)</c> over the whole reduction.</summary>
    [System.Runtime.CompilerServices.MethodImpl(
        System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization
    )]
    private static void ComputeBlock(
        float* a,
        long aRow,
        long aCol,
        float* bPack,
        long panelStride,
        float* c,
        int n,
        int k,
        int i0,
        int rows,
        int j0,
        int cols,
        bool accumulate,
        int kc
    )
    {
        int mr = GemmMicroKernel.MR,
            nr = GemmMicroKernel.NR;
        int mPanels = (rows + mr - 1) / mr;
        int nPanels = (cols + nr - 1) / nr;
        int depthMax = Math.Min(kc, k);
        using GemmScratch.Lease aLease = GemmScratch.Rent(GemmScratch.Slot.PackedA, (long)mPanels * mr * depthMax);
        float* aPack = aLease.Pointer;
        float* tile = stackalloc float[12 * 32];
        {
            for (int p0 = 0; p0 < k; p0 += kc)
            {
                int depth = Math.Min(kc, k - p0);
                for (int ip = 0; ip < mPanels; ip++)
                {
                    GemmMicroKernel.PackA(
                        a,
                        aRow,
                        aCol,
                        i0 + (ip * mr),
                        Math.Min(mr, rows - (ip * mr)),
                        p0,
                        depth,
                        aPack + ((long)ip * mr * depth)
                    );
                }

                bool fromZero = p0 == 0 && !accumulate;
                for (int jp = 0; jp < nPanels; jp++)
                {
                    int jj = j0 + (jp * nr);
                    int nValid = Math.Min(nr, cols - (jp * nr));
                    float* bPanel = bPack + ((jj / nr) * panelStride) + ((long)p0 * nr);
                    for (int ip = 0; ip < mPanels; ip++)
                    {
                        int ii = i0 + (ip * mr);
                        int mValid = Math.Min(mr, rows - (ip * mr));
                        float* aPanel = aPack + ((long)ip * mr * depth);
                        if (mValid == mr && nValid == nr)
                        {
                            // A whole tile: the kernel reads and writes C in place.
                            GemmMicroKernel.Kernel(depth, aPanel, bPanel, c + ((long)ii * n) + jj, n, !fromZero);
                            continue;
                        }
                        LoadTile(tile, c, n, ii, jj, mValid, nValid, fromZero);
                        GemmMicroKernel.Kernel(depth, aPanel, bPanel, tile, nr, load: true);
                        StoreTile(tile, c, n, ii, jj, mValid, nValid);
                    }
                }
            }
        }
    }

    private static void LoadTile(float* tile, float* c, int n, int ii, int jj, int mValid, int nValid, bool fromZero)
    {
        int nr = GemmMicroKernel.NR;
        new Span<float>(tile, GemmMicroKernel.MR * nr).Clear();
        if (fromZero)
            return;
        for (int r = 0; r < mValid; r++)
        {
            new ReadOnlySpan<float>(c + ((long)(ii + r) * n) + jj, nValid).CopyTo(
                new Span<float>(tile + (r * nr), nValid)
            );
        }
    }

    private static void StoreTile(float* tile, float* c, int n, int ii, int jj, int mValid, int nValid)
    {
        int nr = GemmMicroKernel.NR;
        for (int r = 0; r < mValid; r++)
        {
            new ReadOnlySpan<float>(tile + (r * nr), nValid).CopyTo(
                new Span<float>(c + ((long)(ii + r) * n) + jj, nValid)
            );
        }
    }
}
