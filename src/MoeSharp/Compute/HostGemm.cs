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

    /// <summary>
    /// Computes every C block of <paramref name="wave"/> in one parallel pass, packing its operands on the way: B
    /// ([panel][K][NR] per product) and, for products with more than one or two column blocks, A ([panel][K][MR]) into
    /// one shared buffer, one panel's chunk of <paramref name="kc"/> reduction steps at a time, by the first task that
    /// needs it (<see cref="GemmPanelChunks"/>).
    /// </summary>
    /// <remarks>
    /// Packing inside the pass rather than in a pass of its own saves a fork and join of every thread per call (on 16
    /// threads a good part of a small expert's product) and uses each packed chunk while it is still in the packer's
    /// caches instead of writing all of B out and reading it back. A task packs the A rows of its block itself when its
    /// product has one or two column blocks (each row is packed at most twice, and then while it is hot). With more,
    /// every task would pack the same rows again for its own columns (narrow blocks of small products at many threads:
    /// up to eight times), so those A are packed once into the shared buffer as well.
    /// </remarks>
    private static void RunWave(Problem[] wave, long packedFloats, bool accumulate, int mc, int nc, int kc, int threads)
    {
        int count = wave.Length;
        var layouts = new ProductBlocks[count];
        var packStart = new long[count];
        var blockStart = new int[count + 1];
        long offset = 0;
        int chunkStates = 0;
        for (int i = 0; i < count; i++)
        {
            layouts[i] = ProductBlocks.LayOut(wave[i], mc, nc, kc, ref chunkStates);
            packStart[i] = offset;
            offset += layouts[i].PackedFloats;
            blockStart[i + 1] = blockStart[i] + layouts[i].Count;
        }

        using GemmScratch.Lease lease = GemmScratch.Rent(GemmScratch.Slot.PackedB, packedFloats);
        nint packAddr = (nint)lease.Pointer;
        var states = new GemmPanelChunks(chunkStates);
        HostWorkerTeam.For(
            blockStart[count],
            threads,
            task =>
            {
                int i = Owner(blockStart, task);
                RunBlock(
                    wave[i],
                    layouts[i],
                    (float*)packAddr + packStart[i],
                    states,
                    task - blockStart[i],
                    accumulate,
                    threads
                );
            }
        );
    }

    /// <summary>
    /// Computes block <paramref name="block"/> of <paramref name="layout"/>'s product (row blocks outer), its packed
    /// operands at <paramref name="packed"/> (B, then A when prepacked), claiming and packing the chunks no other task
    /// has: all it finds free at once when <paramref name="threads"/> is 1 or few blocks share them, otherwise one at a
    /// time (<see cref="PanelsPerPacking"/>).
    /// </summary>
    private static void RunBlock(
        Problem p,
        ProductBlocks layout,
        float* packed,
        GemmPanelChunks states,
        int block,
        bool accumulate,
        int threads
    )
    {
        int rowBlock = block / layout.ColumnBlocks,
            columnBlock = block % layout.ColumnBlocks;
        int i0 = rowBlock * layout.RowBlockHeight;
        int j0 = columnBlock * layout.ColumnBlockWidth;
        var shared = new SharedPacking(
            packed,
            layout.BStates,
            layout.AStates >= 0 ? packed + layout.AOffset : null,
            layout.AStates,
            states,
            rowBlock,
            columnBlock,
            PanelsPerPacking(layout.RowBlocks, threads),
            PanelsPerPacking(layout.ColumnBlocks, threads)
        );
        ComputeBlock(
            p,
            shared,
            i0,
            Math.Min(layout.RowBlockHeight, p.M - i0),
            j0,
            Math.Min(layout.ColumnBlockWidth, p.N - j0),
            accumulate,
            layout.ChunkSteps
        );
    }

    /// <summary>The product whose range <c>[starts[i], starts[i+1])</c> holds <paramref name="index"/>.</summary>
    private static int Owner(int[] starts, int index)
    {
        int lo = 0,
            hi = starts.Length - 2;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (starts[mid] <= index)
                lo = mid;
            else
                hi = mid - 1;
        }
        return lo;
    }

    /// <summary>
    /// How many panel chunks a task claims before it packs them, when <paramref name="sharers"/> tasks need the same
    /// panels: all it finds free (one pass row by row over them, <see cref="GemmPanelSource.PackAll"/>) when at most
    /// two tasks can be sharing them at once (at most two share them, or at most two threads run the wave); otherwise
    /// one at a time, so that the many tasks sharing the panels of a product split into narrow blocks (one expert on
    /// 16 threads: 11 row blocks per column block) pack them in parallel instead of waiting for the first. On the GPU
    /// machine's Xeon that lone product ran at 440–550 GFLOP/s with every task claiming all it found (main's
    /// one-at-a-time claims: 610–680 in the same run), and at 540–705 with this rule (bench/RESULTS-cpu.md, stop 25).
    /// </summary>
    /// <remarks>
    /// Two threads (since stop 37; the rule counted only the sharers before): 1024³ has 8 row blocks and 4 column
    /// blocks there, so each task packed the panels of its rows and columns one at a time, a panel's 12 or 32 floats of
    /// every step from rows 4 KiB apart, where the panels of A·B's B and Aᵀ·B's A and B can be copied row by row
    /// together. On the GPU machine's Xeon (cores 2–3, builds alternating, medians of 8 and 20 rounds in GFLOP/s, A·Bᵀ
    /// / A·B / Aᵀ·B) 1024³ ran at 190 / 195 / 190 against 168 / 172 / 169, then 206 / 218 / 208 against
    /// 210 / 198 / 198: A·Bᵀ, whose packs transpose a panel at a time either way, level; the others 5–13 % faster.
    /// </remarks>
    private static int PanelsPerPacking(int sharers, int threads) => Math.Min(sharers, threads) <= 2 ? int.MaxValue : 1;

    /// <summary>
    /// Whether products run on <see cref="RunPrivateGrid"/> rather than the shared pass: when none is deeper than
    /// <see cref="MaxPrivateDepth"/>, and either one product has at most two default blocks per thread (an expert's
    /// few hundred rows, or 1024³, on many threads), or several have packed operands that would not fit one wave of
    /// the shared pass while a wave would give each thread at most <see cref="MaxPrivateWaveBlocksPerThread"/> blocks.
    /// </summary>
    /// <remarks>
    /// With several products the shared pass forks, packs and joins once per wave, and each wave's tasks start by
    /// waiting for panels that others pack; the private grid packs each block's rows and columns for that block alone.
    /// The private grid is ahead when each thread has few blocks a wave (16 experts of 1024³ on 16 threads: eight waves
    /// of about four blocks per thread), the shared pass when each has many (two experts of 1024³ on 2 threads: about
    /// 32).
    /// </remarks>
    private static bool TakesPrivateGrid(List<Problem> work, int mc, int nc, int threads)
    {
        if (!work.TrueForAll(p => p.K <= MaxPrivateDepth))
            return false;
        if (work.Count == 1)
            return TotalBlocks(work, mc, nc) <= 2 * threads;
        long packed = work.Sum(p => PackedFloats(p, nc));
        if (packed <= KeptFloats)
            return false;
        // A wave holds about KeptFloats / packed of the blocks.
        double blocksPerThreadPerWave = (double)TotalBlocks(work, mc, nc) * KeptFloats / packed / threads;
        return blocksPerThreadPerWave <= MaxPrivateWaveBlocksPerThread;
    }

    /// <summary>
    /// The most default blocks per thread in one wave of the shared pass at which several products take
    /// <see cref="RunPrivateGrid"/>. Measured: with about 4 (16 experts of 1024³ on 16 threads) the private grid ran
    /// at 1,100–1,338 GFLOP/s against 928–983 on the shared pass on the GPU machine's Xeon (bench/RESULTS-cpu.md,
    /// stop 30, call F); with about 32 (two or three experts of 1024³ on 2 threads) the shared pass ran 1.07–1.36× as
    /// fast on the dev machine's Zen 4 and mostly ahead on the Xeon (stop 31, call E). 8 lies between, with room for
    /// the layer's uneven rows around the first.
    /// </summary>
    private const double MaxPrivateWaveBlocksPerThread = 8;

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
    /// Where one task finds the packed panels of its product in the wave's shared buffer, the chunks' states, and its
    /// block's position (to start claiming at a panel that tasks sharing the same panels do not start at).
    /// </summary>
    private readonly struct SharedPacking(
        float* b,
        int bChunks,
        float* a,
        int aChunks,
        GemmPanelChunks states,
        int rowBlock,
        int columnBlock,
        int bPanelsPerPacking,
        int aPanelsPerPacking
    )
    {
        /// <summary>The product's B panels, <c>[panel][K][NR]</c>.</summary>
        public float* B { get; } = b;

        /// <summary>The state index of B panel 0's chunk 0; panel q's chunk c is at
        /// <c>BChunks + q·chunks + c</c>.</summary>
        public int BChunks { get; } = bChunks;

        /// <summary>The product's A panels, <c>[panel][K][MR]</c>; null when each task packs its own A rows.</summary>
        public float* A { get; } = a;

        /// <summary>The state index of A panel 0's chunk 0, as for B.</summary>
        public int AChunks { get; } = aChunks;

        /// <summary>Which panels' chunks are packed.</summary>
        public GemmPanelChunks States { get; } = states;

        /// <summary>The block's row-block index (tasks of one column block differ in it).</summary>
        public int RowBlock { get; } = rowBlock;

        /// <summary>The block's column-block index (tasks of one row block differ in it).</summary>
        public int ColumnBlock { get; } = columnBlock;

        /// <summary>Most B panel chunks the task claims before packing them (<see cref="PanelsPerPacking"/>).</summary>
        public int BPanelsPerPacking { get; } = bPanelsPerPacking;

        /// <summary>Most shared A panel chunks the task claims before packing them.</summary>
        public int APanelsPerPacking { get; } = aPanelsPerPacking;
    }

    /// <summary>
    /// The depth of each reduction chunk when <paramref name="k"/> steps are cut into as few chunks of at most
    /// <paramref name="kc"/> as cover them, all of (nearly) one depth: 1,100 steps under a <paramref name="kc"/> of
    /// 1,024 are two chunks of 550, not 1,024 and a short 76. A short chunk costs its own pass over the C block and its
    /// own packing round for little work: 512 steps as 384 and 128 ran 2–5 points of the FMA peak behind one chunk of
    /// 512 (bench/RESULTS-cpu.md, stop 39). The chunks only cut where each element's chain is stored and reloaded, so
    /// they never change a bit.
    /// </summary>
    internal static int ChunkDepth(int k, int kc) => Blocks(k, Blocks(k, kc));

    /// <summary>
    /// One task: the C block <c>[i0, i0+rows) × [j0, j0+cols)</c> over the whole reduction, chunk by chunk of
    /// <paramref name="kc"/> steps, the last possibly fewer (<see cref="ProductBlocks.ChunkSteps"/>). Before each chunk
    /// it claims and packs the chunks of the shared panels it needs that no other task has claimed, from a panel that
    /// depends on its block's position (so tasks that share panels start on different ones), then waits for any
    /// claimed elsewhere as it reaches them. Packing is a copy: who packs a chunk, and when, never changes a bit.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(
        System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization
    )]
    private static void ComputeBlock(
        Problem p,
        SharedPacking shared,
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
        int k = p.K,
            n = p.N;
        int chunks = Blocks(k, kc);
        int mPanels = (rows + mr - 1) / mr;
        int nPanels = (cols + nr - 1) / nr;
        int firstAPanel = i0 / mr,
            firstBPanel = j0 / nr;
        int depthMax = Math.Min(kc, k);
        GemmPanelChunks states = shared.States;
        // A packed in the shared buffer is [panel][K][MR] over the whole product; otherwise this task packs
        // [panel][depth][MR] for each chunk.
        using GemmScratch.Lease aLease = GemmScratch.Rent(
            GemmScratch.Slot.PackedA,
            shared.A == null ? (long)mPanels * mr * depthMax : 0
        );
        float* aPack = aLease.Pointer;
        float* tile = stackalloc float[12 * 32];
        var aSource = new GemmPanelSource(p.A, p.ARow, p.ACol, p.M, mr);
        var bSource = new GemmPanelSource(p.B, p.BJ, p.BP, n, nr);
        // The panels one packing round covers and where each goes.
        int listLength = Math.Max(mPanels, nPanels);
        Span<int> panels = listLength <= 64 ? stackalloc int[64] : new int[listLength];
        Span<nint> destinations = listLength <= 64 ? stackalloc nint[64] : new nint[listLength];
        for (int p0 = 0, chunk = 0; p0 < k; p0 += kc, chunk++)
        {
            int depth = Math.Min(kc, k - p0);
            if (shared.A == null)
            {
                for (int ip = 0; ip < mPanels; ip++)
                {
                    panels[ip] = firstAPanel + ip;
                    destinations[ip] = (nint)(aPack + ((long)ip * mr * depth));
                }
                aSource.PackAll(panels[..mPanels], destinations[..mPanels], p0, depth);
            }
            else
            {
                var claim = new GemmChunkClaim(states, shared.AChunks, chunks, chunk, shared.A, k, p0);
                claim.PackUnclaimed(
                    aSource,
                    firstAPanel,
                    mPanels,
                    shared.ColumnBlock,
                    depth,
                    shared.APanelsPerPacking,
                    panels,
                    destinations
                );
            }
            var bClaim = new GemmChunkClaim(states, shared.BChunks, chunks, chunk, shared.B, k, p0);
            bClaim.PackUnclaimed(
                bSource,
                firstBPanel,
                nPanels,
                shared.RowBlock,
                depth,
                shared.BPanelsPerPacking,
                panels,
                destinations
            );
            if (shared.A != null)
            {
                for (int ip = 0; ip < mPanels; ip++)
                    states.WaitFor(shared.AChunks + ((firstAPanel + ip) * chunks) + chunk);
            }

            bool fromZero = p0 == 0 && !accumulate;
            for (int jp = 0; jp < nPanels; jp++)
            {
                int jj = j0 + (jp * nr);
                int nValid = Math.Min(nr, cols - (jp * nr));
                states.WaitFor(shared.BChunks + ((firstBPanel + jp) * chunks) + chunk);
                float* bPanel = shared.B + ((long)(firstBPanel + jp) * k * nr) + ((long)p0 * nr);
                for (int ip = 0; ip < mPanels; ip++)
                {
                    int ii = i0 + (ip * mr);
                    int mValid = Math.Min(mr, rows - (ip * mr));
                    float* aPanel =
                        shared.A != null
                            ? shared.A + ((long)(firstAPanel + ip) * k * mr) + ((long)p0 * mr)
                            : aPack + ((long)ip * mr * depth);
                    if (mValid == mr && nValid == nr)
                    {
                        // A whole tile: the kernel reads and writes C in place.
                        GemmMicroKernel.Kernel(depth, aPanel, bPanel, p.C + ((long)ii * n) + jj, n, !fromZero);
                        continue;
                    }
                    LoadTile(tile, p.C, n, ii, jj, mValid, nValid, fromZero);
                    GemmMicroKernel.EdgeKernel(mValid, depth, aPanel, bPanel, tile, nr, load: true);
                    StoreTile(tile, p.C, n, ii, jj, mValid, nValid);
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
