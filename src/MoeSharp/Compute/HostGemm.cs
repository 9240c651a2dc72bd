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
internal static unsafe partial class HostGemm
{
    // 24 micro-panels of 6 rows or 12 of 12: the A block (at most 576 KiB at 512 bits, 144 KiB at 256) stays in L2,
    // and each B micro-panel serves 144 rows before the next one (72 rows read every B panel twice as often from L3).
    private const int DefaultMC = 144;
    private const int DefaultNC = 256; // 16 micro-panels of 16 columns or 8 of 32 per task.
    private static readonly int DefaultKC = GemmMicroKernel.KC; // depth of one packed block.
    private const long SequentialFlops = 1L << 16; // below this, threads cost more than they save.
    private const int MaxSequentialNC = 1024; // widest C block on one thread: 144 x 1024 floats, 576 KiB.

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
            // Few rows (the router's E, the trainer's head): packing B would cost more than the product; same chains.
            if (k > 0 && SkinnyTransposeAProduct.Handles(m, n))
            {
                int threads = maxDegreeOfParallelism < 1 ? HostThreads.Current : maxDegreeOfParallelism;
                SkinnyTransposeAProduct.Run(pa, pb, pc, m, n, k, accumulate, threads);
                return;
            }
            Run(pa, 1, m, pb, n, 1, pc, m, n, k, accumulate, DefaultMC, DefaultNC, DefaultKC, maxDegreeOfParallelism);
        }
    }

    /// <summary>
    /// <see cref="MatMulTransposeB"/> for every group of consecutive rows: the rows of group g times <c>b[g]ᵀ</c>
    /// (<c>[N, K]</c>) into the same rows of <paramref name="c"/>, all groups in one parallel pass. Groups without rows
    /// have no output rows.
    /// </summary>
    /// <param name="a">A: [R, K], the groups' rows one after another.</param>
    /// <param name="b">B: [G, N, K].</param>
    /// <param name="c">C: [R, N].</param>
    /// <param name="rowsPerGroup">Rows of each of the G groups, summing to R.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">Reduction length.</param>
    /// <param name="accumulate">Continue from C's values instead of zero.</param>
    /// <param name="maxDegreeOfParallelism">Threads to use (-1: <see cref="HostThreads.Current"/>). Never changes the
    /// result.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs.</exception>
    public static void GroupedMatMulTransposeB(
        ReadOnlySpan<float> a,
        ReadOnlySpan<float> b,
        Span<float> c,
        ReadOnlySpan<long> rowsPerGroup,
        int n,
        int k,
        bool accumulate = false,
        int maxDegreeOfParallelism = -1
    )
    {
        long rows = ValidateGroups(rowsPerGroup, n, k);
        CheckAtLeast(a.Length, rows * k, nameof(a));
        CheckAtLeast(b.Length, (long)rowsPerGroup.Length * n * k, nameof(b));
        CheckAtLeast(c.Length, rows * n, nameof(c));
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var problems = new List<Problem>(rowsPerGroup.Length);
            long start = 0;
            for (int g = 0; g < rowsPerGroup.Length; g++)
            {
                int m = (int)rowsPerGroup[g];
                if (m > 0)
                    problems.Add(
                        new Problem(pa + (start * k), k, 1, pb + ((long)g * n * k), 1, k, pc + (start * n), m, n, k)
                    );
                start += m;
            }
            RunMany(problems.ToArray(), accumulate, DefaultMC, DefaultNC, DefaultKC, maxDegreeOfParallelism);
        }
    }

    /// <summary>
    /// <see cref="MatMul"/> for every group of consecutive rows, with <c>b[g]</c> (<c>[K, N]</c>), all groups in one
    /// parallel pass.
    /// </summary>
    /// <param name="a">A: [R, K], the groups' rows one after another.</param>
    /// <param name="b">B: [G, K, N].</param>
    /// <param name="c">C: [R, N].</param>
    /// <param name="rowsPerGroup">Rows of each of the G groups, summing to R.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">Reduction length.</param>
    /// <param name="accumulate">Continue from C's values instead of zero.</param>
    /// <param name="maxDegreeOfParallelism">Threads to use (-1: <see cref="HostThreads.Current"/>). Never changes the
    /// result.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs.</exception>
    public static void GroupedMatMul(
        ReadOnlySpan<float> a,
        ReadOnlySpan<float> b,
        Span<float> c,
        ReadOnlySpan<long> rowsPerGroup,
        int n,
        int k,
        bool accumulate = false,
        int maxDegreeOfParallelism = -1
    )
    {
        long rows = ValidateGroups(rowsPerGroup, n, k);
        CheckAtLeast(a.Length, rows * k, nameof(a));
        CheckAtLeast(b.Length, (long)rowsPerGroup.Length * n * k, nameof(b));
        CheckAtLeast(c.Length, rows * n, nameof(c));
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var problems = new List<Problem>(rowsPerGroup.Length);
            long start = 0;
            for (int g = 0; g < rowsPerGroup.Length; g++)
            {
                int m = (int)rowsPerGroup[g];
                if (m > 0)
                    problems.Add(
                        new Problem(pa + (start * k), k, 1, pb + ((long)g * k * n), n, 1, pc + (start * n), m, n, k)
                    );
                start += m;
            }
            RunMany(problems.ToArray(), accumulate, DefaultMC, DefaultNC, DefaultKC, maxDegreeOfParallelism);
        }
    }

    /// <summary>
    /// <see cref="MatMulTransposeA"/> for every group of consecutive rows into <c>c[g]</c> (reducing over the group's
    /// rows in ascending order), all groups in one parallel pass; groups without rows leave <c>c[g]</c> as it is.
    /// </summary>
    /// <param name="a">A: [R, M], the groups' rows one after another.</param>
    /// <param name="b">B: [R, N], likewise.</param>
    /// <param name="c">C: [G, M, N].</param>
    /// <param name="rowsPerGroup">Rows of each of the G groups, summing to R.</param>
    /// <param name="m">Rows of each C[g].</param>
    /// <param name="n">Columns of each C[g].</param>
    /// <param name="accumulate">Continue from C's values instead of zero.</param>
    /// <param name="maxDegreeOfParallelism">Threads to use (-1: <see cref="HostThreads.Current"/>). Never changes the
    /// result.</param>
    /// <exception cref="ArgumentException">A span is shorter than its shape needs.</exception>
    public static void GroupedMatMulTransposeA(
        ReadOnlySpan<float> a,
        ReadOnlySpan<float> b,
        Span<float> c,
        ReadOnlySpan<long> rowsPerGroup,
        int m,
        int n,
        bool accumulate = false,
        int maxDegreeOfParallelism = -1
    )
    {
        long rows = ValidateGroups(rowsPerGroup, m, n);
        CheckAtLeast(a.Length, rows * m, nameof(a));
        CheckAtLeast(b.Length, rows * n, nameof(b));
        CheckAtLeast(c.Length, (long)rowsPerGroup.Length * m * n, nameof(c));
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var problems = new List<Problem>(rowsPerGroup.Length);
            long start = 0;
            for (int g = 0; g < rowsPerGroup.Length; g++)
            {
                int k = (int)rowsPerGroup[g];
                if (k > 0)
                    problems.Add(
                        new Problem(pa + (start * m), 1, m, pb + (start * n), n, 1, pc + ((long)g * m * n), m, n, k)
                    );
                start += k;
            }
            RunMany(problems.ToArray(), accumulate, DefaultMC, DefaultNC, DefaultKC, maxDegreeOfParallelism);
        }
    }

    /// <summary>Checks the group sizes and the two matrix extents; returns the total rows.</summary>
    private static long ValidateGroups(ReadOnlySpan<long> rowsPerGroup, int first, int second)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(first);
        ArgumentOutOfRangeException.ThrowIfNegative(second);
        long total = 0;
        for (int g = 0; g < rowsPerGroup.Length; g++)
        {
            if (rowsPerGroup[g] is < 0 or > int.MaxValue)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(rowsPerGroup),
                    rowsPerGroup[g],
                    $"group {g} has {rowsPerGroup[g]} rows"
                );
            }
            total += rowsPerGroup[g];
        }
        return total;
    }

    private static void CheckAtLeast(int actual, long needed, string name)
    {
        if (actual < needed)
            throw new ArgumentException($"{name} has {actual} elements but the groups' shapes need {needed}", name);
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
    /// The blocked driver for one product. The left operand is <c>A(i, p) = a[i*aRow + p*aCol]</c>, the right one
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
        Problem[] one = [new Problem(a, aRow, aCol, b, bP, bJ, c, m, n, k)];
        RunMany(one, accumulate, mc, nc, kc, maxDegreeOfParallelism);
    }

    /// <summary>
    /// The blocked driver for several independent products at once (a grouped call: one per expert). With at least two
    /// products per thread each product is owned by one thread, whose blocks others take only once every product is
    /// owned (<see cref="RunOwnedProducts"/>). With fewer (16 experts on 16 threads) all their C blocks are computed in
    /// one parallel pass that also packs their operands (<see cref="RunWave"/>), so every thread stays busy however the
    /// rows fall on the experts, and nothing forks per expert. Products whose packed operands together exceed a
    /// thread's kept scratch run in consecutive waves of that pass, or on <see cref="RunPrivateGrid"/> instead when
    /// <see cref="TakesPrivateGrid"/> says so, as does a single product of at most two default blocks per thread. Each
    /// element is still its own ascending chain: grouping, like blocking and threads, never changes a bit.
    /// </summary>
    private static void RunMany(Problem[] problems, bool accumulate, int mc, int nc, int kc, int maxDegreeOfParallelism)
    {
        var work = new List<Problem>(problems.Length);
        long flops = 0;
        foreach (Problem p in problems)
        {
            if (p.M == 0 || p.N == 0)
                continue;
            if (p.K == 0)
            {
                if (!accumulate)
                    new Span<float>(p.C, checked(p.M * p.N)).Clear();
                continue;
            }
            work.Add(p);
            flops += (long)p.M * p.N * p.K;
        }
        if (work.Count == 0)
            return;

        int mr = GemmMicroKernel.MR,
            nr = GemmMicroKernel.NR;
        mc = Math.Max(mr, mc / mr * mr);
        nc = Math.Max(nr, nc / nr * nr);
        kc = Math.Max(1, kc);
        if (maxDegreeOfParallelism < 1)
            maxDegreeOfParallelism = HostThreads.Current;
        bool sequential = maxDegreeOfParallelism == 1 || flops < SequentialFlops;
        if (work.Count >= 2 * (sequential ? 1 : maxDegreeOfParallelism))
        {
            // Two products or more per thread (16 experts on 2 threads, or on one): each is owned by one thread,
            // largest first, so its B is packed into that thread's kept buffer and used at once, while hot in the
            // core's cache; the shared pass below would pack every B first and read them back from memory.
            RunOwnedProducts(
                work.OrderByDescending(p => (long)p.M * p.N * p.K).ToArray(),
                accumulate,
                mc,
                nc,
                kc,
                sequential ? 1 : maxDegreeOfParallelism
            );
            return;
        }
        if (sequential && work.Count == 1)
            nc = OwnedColumnBlock(work[0], nc);
        if (!sequential && TakesPrivateGrid(work, mc, nc, maxDegreeOfParallelism))
        {
            // A grid of blocks that pack their own operands, rather than blocks that share packed panels
            // (HostGemm.PrivateGrid.cs). An explicit row blocking (tests) bounds the grid's rows.
            RunPrivateGrid(
                work.ToArray(),
                accumulate,
                mc == DefaultMC ? PrivateMaxRows : mc,
                nc,
                maxDegreeOfParallelism
            );
            return;
        }
        if (!sequential)
        {
            // Small products (an expert's few hundred rows) would leave threads idle: narrow the blocks until every
            // thread has two tasks. Rows first, down to two micro-panels: every task packs the A rows of its block for
            // its own columns, so narrower column blocks pack A more often while shorter row blocks cost nothing extra
            // (B is packed once); then columns down to two micro-panels, then rows down to one.
            int wanted = 2 * maxDegreeOfParallelism;
            while (TotalBlocks(work, mc, nc) < wanted && mc > 2 * mr)
                mc = Math.Max(2 * mr, mc / 2);
            while (TotalBlocks(work, mc, nc) < wanted && nc > 2 * nr)
                nc = Math.Max(2 * nr, nc / 2);
            while (TotalBlocks(work, mc, nc) < wanted && mc > mr)
                mc = Math.Max(mr, mc / 2);
            mc = Math.Max(mr, mc / mr * mr);
            nc = Math.Max(nr, nc / nr * nr);
        }
        int threads = sequential ? 1 : maxDegreeOfParallelism;

        for (int first = 0; first < work.Count; )
        {
            // A wave: consecutive products whose packed operands fit the kept scratch together (at least one product).
            int end = first + 1;
            long floats = PackedFloats(work[first], nc);
            while (end < work.Count && floats + PackedFloats(work[end], nc) <= KeptFloats)
                floats += PackedFloats(work[end++], nc);
            RunWave(work.GetRange(first, end - first).ToArray(), floats, accumulate, mc, nc, kc, threads);
            first = end;
        }
    }

    /// <summary>Floats of packing buffer a thread keeps between calls.</summary>
    private static long KeptFloats => GemmScratch.MaxKeptBytes / sizeof(float);

    private static long PackedBFloats(Problem p) =>
        (p.N + GemmMicroKernel.NR - 1) / GemmMicroKernel.NR * (long)p.K * GemmMicroKernel.NR;

    private static long PackedAFloats(Problem p) =>
        (p.M + GemmMicroKernel.MR - 1) / GemmMicroKernel.MR * (long)p.K * GemmMicroKernel.MR;

    /// <summary>
    /// Whether <paramref name="p"/>'s A is packed once beside its B: when it has three column blocks or more (with
    /// two, packing a hot block again costs about what writing the packed copy out and reading it back does) and both
    /// fit the kept scratch (a larger product packs A per task rather than allocate fresh pages per call).
    /// </summary>
    private static bool PrepacksA(Problem p, int nc) =>
        Blocks(p.N, nc) >= 3 && PackedBFloats(p) + PackedAFloats(p) <= KeptFloats;

    private static long PackedFloats(Problem p, int nc) => PackedBFloats(p) + (PrepacksA(p, nc) ? PackedAFloats(p) : 0);

    private static long TotalBlocks(List<Problem> work, int mc, int nc)
    {
        long total = 0;
        foreach (Problem p in work)
            total += (long)Blocks(p.M, mc) * Blocks(p.N, nc);
        return total;
    }

    /// <summary>
    /// One product of <see cref="RunMany"/>: <c>A(i, p) = A[i*ARow + p*ACol]</c>, <c>B(p, j) = B[p*BP + j*BJ]</c>,
    /// C row-major <c>[M, N]</c>.
    /// </summary>
    private readonly struct Problem(
        float* a,
        long aRow,
        long aCol,
        float* b,
        long bP,
        long bJ,
        float* c,
        int m,
        int n,
        int k
    )
    {
        public float* A { get; } = a;
        public long ARow { get; } = aRow;
        public long ACol { get; } = aCol;
        public float* B { get; } = b;
        public long BP { get; } = bP;
        public long BJ { get; } = bJ;
        public float* C { get; } = c;
        public int M { get; } = m;
        public int N { get; } = n;
        public int K { get; } = k;
    }

    private static int Blocks(int extent, int block) => (extent + block - 1) / block;

    /// <summary>
    /// Copies an edge tile's <paramref name="mValid"/> × <paramref name="nValid"/> elements of C at
    /// (<paramref name="ii"/>, <paramref name="jj"/>) into a zeroed <c>MR × NR</c> scratch tile (only zeros when
    /// <paramref name="fromZero"/>), so the edge kernel can run as on a whole tile.
    /// </summary>
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

    /// <summary>Copies an edge tile's valid elements from the scratch tile back into C.</summary>
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
