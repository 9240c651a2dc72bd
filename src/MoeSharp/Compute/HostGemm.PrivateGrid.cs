namespace MoeSharp.Compute;

internal static unsafe partial class HostGemm
{
    /// <summary>
    /// The deepest reduction <see cref="RunPrivateGrid"/> packs in one chunk: 1024 (the T 8192 layer's D and H). A
    /// task's B block of 256 columns is then 1 MiB and a packed A block of <see cref="PrivateMaxRows"/> rows 1 MiB,
    /// together within its core's 2 MiB L2. Deeper products take the shared pass, which packs in chunks.
    /// </summary>
    private const int MaxPrivateDepth = 1024;

    /// <summary>
    /// The tallest row block the private grid's cost model may choose (22 panels of 12 rows): a packed A block of
    /// <see cref="MaxPrivateDepth"/> steps stays at 1 MiB. 1024³ on 16 threads then runs as 4 × 4 blocks of
    /// 264 × 256 in one round, not 8 × 4 blocks of 132 × 256 in two: A·Bᵀ at 1,165–1,247 GFLOP/s against 985–1,156
    /// on the GPU machine's Xeon (bench/RESULTS-cpu.md, stop 30, call B).
    /// </summary>
    private const int PrivateMaxRows = 264;

    /// <summary>
    /// The widest step stride, in floats (1 KiB), at which a row panel of A is read in place
    /// (<see cref="BlockTiles.ReadsAInPlace"/>). A transposed A (Aᵀ·B) puts consecutive steps M floats apart. On the
    /// GPU machine's Xeon at 16 threads (bench/RESULTS-cpu.md, stops 28 and 30), read in place rather than packed:
    /// M = 256 (1 KiB) ran faster; M = 512 ran 10–17 % slower on 512³, and slower still at K = 1024; M = 1024 (4 KiB,
    /// every step on a page of its own) at about half the speed on 1024³.
    /// </summary>
    private const long MaxInPlaceStepStride = 256;

    /// <summary>
    /// The widest step stride, in floats (2 KiB), at which a row-major B's columns are read in place
    /// (<see cref="BlockTiles.ReadsBInPlace"/>): A·B's and Aᵀ·B's <c>[K, N]</c> B with N at most 512, the T 2048
    /// layer's. On the dev machine's Zen 5 (bench/RESULTS-cpu.md, stop 40; 30 rounds alternating packed and in place,
    /// each round's rate in place over packed) the lone 256 × 512 × 512 expert cut into the 16-thread grid's 2 × 8
    /// blocks (eight a core on its two cores; the GPU machine's 16-core Xeon has yet to run it) ran its
    /// A·B 1.060× and Aᵀ·B 1.051× as fast (21–23 rounds of 30 ahead; untouched rows 0.987–1.012, and every row
    /// 0.985–1.007 when both sides packed), and on its 2-thread grid of two 256 × 256 blocks level (1.02×, as the
    /// untouched rows). At 4 KiB (N = 1,024), where every step is a page of its own, 1,024-wide products whose B one
    /// thread read in place fell to 70–81 % of the FMA peak from 88–91 % packed.
    /// <para>
    /// A step's 32 floats are two cache lines only when B lies on a 64-byte boundary. On the GPU machine's Xeon (stop
    /// 43, calls D and E: one process alternating the configurations call by call), the lone expert with B on the
    /// boundary read in place ran its A·B 5–9 % and its Aᵀ·B 6–11 % faster than packed at 2 threads, and 15–18 % faster
    /// at 16; with B 16, 32 or 48 bytes past it, every step spans three lines and the same reads ran at 0.89–0.94 (A·B)
    /// and 0.86–0.90 (Aᵀ·B) of the aligned rate: at 2 threads level with packing (A·B) or 3–5 % behind it (Aᵀ·B), still
    /// 3–8 % ahead of it at 16. B is read in place either way; a 64-byte-aligned B (every tensor the library
    /// allocates) gets the faster reads.
    /// </para>
    /// </summary>
    private const long MaxInPlaceBStepStride = 512;

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

    /// <summary>
    /// One product of at most two default blocks per thread (an expert's few hundred rows, or 1024³ on 16 threads),
    /// or several products too large for one wave of the shared pass with few blocks per thread a wave (16 experts of
    /// 1024 × 1024 × 1024 on 16 threads; <see cref="TakesPrivateGrid"/>), each cut by
    /// <see cref="GemmTaskGrid"/> as if it had its share of the threads (one product: about one block per thread),
    /// each task packing its own block's B columns and A rows over the whole reduction, unless it reads them where they
    /// lie (<see cref="BlockTiles.ReadsBInPlace"/>, <see cref="BlockTiles.ReadsAInPlace"/>), then computing its tiles;
    /// once no block is left to start, a task that runs out of tiles takes the untaken tiles of blocks whose operands
    /// are packed.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Why private packing: in the shared pass (<see cref="RunWave"/>) a panel's cache lines are written each call by
    /// whichever task claims it first, then read by others, so they move from core to core. On the GPU machine's
    /// 16-vCPU Xeon a task of a 256 × 512 × 512 product spent 49–70 µs packing its share of shared panels and 23–33 µs
    /// packing its whole block alone (bench/RESULTS-cpu.md, stop 27), some rows being packed twice.
    /// </para>
    /// <para>
    /// Why only up to two default blocks per thread: a task packs its block's rows and columns for its block alone, so
    /// with more blocks per thread the shared pass, which packs each panel once, is ahead. On that Xeon (stop 30,
    /// calls C and D, A·Bᵀ): 1024³ on 16 threads (two blocks per thread) ran at 1,288–1,330 GFLOP/s on this grid and
    /// 1,042–1,050 on the shared pass; 4096 × 1024 × 1024 on 16 threads (seven per thread) at 1,061–1,240 and
    /// 1,175–1,361; 1024³ on 2 threads at 212–258 and 276–285.
    /// </para>
    /// <para>
    /// Why several products only past one wave, and only with few blocks per thread a wave: the shared pass then
    /// forks, packs and joins once per wave, and every wave's tasks start by waiting for panels that others pack. 16
    /// experts of 1024 × 1024 × 1024 on 16 threads (eight waves) ran at 1,100–1,338 GFLOP/s (A·Bᵀ) here against
    /// 928–983 on the shared pass, and the T 8192 layer step took 281–316 ms against 305–337; 16 experts of
    /// 256 × 512 × 512 (one wave) ran no faster here, and their Aᵀ·B 15 % slower (stop 30, call F). Two experts of
    /// 1024³ on 2 threads (about 32 blocks per thread a wave) ran 7–26 % slower here than on the shared pass on the
    /// dev machine's Zen 4, and mostly slower on the Xeon (stop 31, call E).
    /// </para>
    /// <para>
    /// Why taking tiles: with one block per thread the product ends with its slowest core, which ran its block up to a
    /// third slower than the mean. A tile is one <c>MR × NR</c> tile of C over the whole reduction, so who computes it,
    /// and when, never changes a bit: it is the same kernel on the same operands. A block's packed buffers stay
    /// with its task until every tile of it is done.
    /// </para>
    /// </remarks>
    private static void RunPrivateGrid(Problem[] problems, bool accumulate, int maxRows, int maxColumns, int threads)
    {
        int mr = GemmMicroKernel.MR;
        // Each product's grid as if it had its share of the threads (all of them when it is alone).
        int threadsPerProduct = Math.Max(1, threads / problems.Length);
        var blocks = new List<BlockTiles>();
        for (int i = 0; i < problems.Length; i++)
        {
            Problem p = problems[i];
            (int mc, int nc) = GemmTaskGrid.Choose(p.M, p.N, threadsPerProduct, maxRows, maxColumns);
            // Row blocks of (nearly) equal whole panels, as in RunWave.
            int height = Blocks(Blocks(p.M, mr), Blocks(p.M, mc)) * mr;
            int rowBlocks = Blocks(p.M, height),
                columnBlocks = Blocks(p.N, nc);
            bool readsAInPlace =
                GemmMicroKernel.Wide && (p.ACol == 1 || (p.ARow == 1 && p.ACol <= MaxInPlaceStepStride));
            bool readsBInPlace =
                GemmMicroKernel.Wide && p.BJ == 1 && p.BP <= MaxInPlaceBStepStride && p.N % GemmMicroKernel.NR == 0;
            for (int t = 0; t < rowBlocks * columnBlocks; t++)
            {
                int i0 = t / columnBlocks * height,
                    j0 = t % columnBlocks * nc;
                blocks.Add(
                    new BlockTiles(
                        i,
                        i0,
                        Math.Min(height, p.M - i0),
                        j0,
                        Math.Min(nc, p.N - j0),
                        readsAInPlace,
                        readsBInPlace
                    )
                );
            }
        }
        int started = 0;
        HostWorkerTeam.For(
            blocks.Count,
            threads,
            task =>
            {
                Interlocked.Increment(ref started);
                BlockTiles own = blocks[task];
                Problem p = problems[own.Product];
                long aFloats = (long)own.PackedRowPanels * mr * p.K,
                    bFloats = own.ReadsBInPlace ? 0 : (long)own.ColumnPanels * GemmMicroKernel.NR * p.K;
                using GemmScratch.Lease aLease = GemmScratch.Rent(GemmScratch.Slot.PackedA, aFloats);
                using GemmScratch.Lease bLease = GemmScratch.Rent(GemmScratch.Slot.PackedB, bFloats);
                PackBlock(p, own, aLease.Pointer, bLease.Pointer);
                own.Publish(aLease.Pointer, bLease.Pointer);
                ComputeTiles(p, own, accumulate);
                // Once no block is left to start, help the others finish; before that, start the next block (its
                // operands then come into this core's caches, not another block's).
                if (Volatile.Read(ref started) >= blocks.Count)
                {
                    for (int s = 1; s < blocks.Count; s++)
                    {
                        BlockTiles other = blocks[(task + s) % blocks.Count];
                        if (other.IsPublished)
                            ComputeTiles(problems[other.Product], other, accumulate);
                    }
                }
                own.WaitUntilDone();
            }
        );
    }

    /// <summary>
    /// Packs the block's A rows (<c>[panel][K][MR]</c>) that <see cref="BlockTiles.PackedRowPanels"/> counts (all of
    /// them, or only a last panel short of <c>MR</c> rows) and, unless they are read in place, its B columns
    /// (<c>[panel][K][NR]</c>).
    /// </summary>
    private static void PackBlock(Problem p, BlockTiles block, float* aPack, float* bPack)
    {
        var rows = new GemmPanelSource(p.A, p.ARow, p.ACol, p.M, GemmMicroKernel.MR);
        int firstPacked = (block.I0 / GemmMicroKernel.MR) + block.RowPanels - block.PackedRowPanels;
        PackPanels(rows, firstPacked, block.PackedRowPanels, aPack, p.K);
        if (block.ReadsBInPlace)
            return;
        var columns = new GemmPanelSource(p.B, p.BJ, p.BP, p.N, GemmMicroKernel.NR);
        PackPanels(columns, block.J0 / GemmMicroKernel.NR, block.ColumnPanels, bPack, p.K);
    }

    /// <summary>Packs <paramref name="count"/> panels from <paramref name="first"/> over all <paramref name="k"/>
    /// steps, one after another at <paramref name="packed"/>.</summary>
    private static void PackPanels(GemmPanelSource source, int first, int count, float* packed, int k)
    {
        Span<int> panels = stackalloc int[count];
        Span<nint> destinations = stackalloc nint[count];
        for (int q = 0; q < count; q++)
        {
            panels[q] = first + q;
            destinations[q] = (nint)(packed + ((long)q * source.Width * k));
        }
        source.PackAll(panels, destinations, 0, k);
    }

    /// <summary>
    /// Computes the block's tiles that nobody has taken yet, column panel by column panel (consecutive tiles share a
    /// B micro-panel), each over the whole reduction.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(
        System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization
    )]
    private static void ComputeTiles(Problem p, BlockTiles block, bool accumulate)
    {
        int mr = GemmMicroKernel.MR,
            nr = GemmMicroKernel.NR;
        int k = p.K,
            n = p.N;
        float* tile = stackalloc float[12 * 32];
        while (block.TryTake(out int t))
        {
            int jp = t / block.RowPanels,
                ip = t % block.RowPanels;
            int ii = block.I0 + (ip * mr),
                jj = block.J0 + (jp * nr);
            int mValid = Math.Min(mr, block.Rows - (ip * mr)),
                nValid = Math.Min(nr, block.Columns - (jp * nr));
            try
            {
                bool whole = mValid == mr && nValid == nr;
                float* c = whole ? p.C + ((long)ii * n) + jj : tile;
                if (!whole)
                    LoadTile(tile, p.C, n, ii, jj, mValid, nValid, fromZero: !accumulate);
                bool load = accumulate || !whole;
                long ldc = whole ? n : nr;
                bool aInPlace = block.ReadsAInPlace && mValid == mr;
                // A's rows where they lie, or this row panel packed: steps MR floats apart, rows 1.
                float* aRows = aInPlace
                    ? p.A + (ii * p.ARow)
                    : block.A + ((long)(ip - (block.RowPanels - block.PackedRowPanels)) * mr * k);
                // B's columns where they lie (steps BP apart), or this column panel packed (steps NR apart).
                float* bColumns = block.ReadsBInPlace ? p.B + jj : block.B + ((long)jp * nr * k);
                if (aInPlace || block.ReadsBInPlace)
                {
                    GemmMicroKernel.Kernel512Strided(
                        mValid,
                        k,
                        aRows,
                        aInPlace ? p.ARow : 1,
                        aInPlace ? p.ACol : mr,
                        bColumns,
                        block.ReadsBInPlace ? p.BP : nr,
                        c,
                        ldc,
                        load
                    );
                }
                else
                {
                    GemmMicroKernel.EdgeKernel(mValid, k, aRows, bColumns, c, ldc, load);
                }
                if (!whole)
                    StoreTile(tile, p.C, n, ii, jj, mValid, nValid);
            }
            finally
            {
                // Counted even if it threw, so the block's task never waits for a tile nobody will finish.
                block.Finished();
            }
        }
    }

    /// <summary>
    /// One C block of <see cref="RunPrivateGrid"/>: its extent, its packed operands once its task has packed them, and
    /// which of its tiles are taken and done.
    /// </summary>
    private sealed class BlockTiles(
        int product,
        int i0,
        int rows,
        int j0,
        int columns,
        bool readsAInPlace,
        bool readsBInPlace
    )
    {
        private int _next;
        private int _done;
        private int _published;

        /// <summary>Which of the pass's products the block belongs to.</summary>
        public int Product { get; } = product;

        /// <summary>First row.</summary>
        public int I0 { get; } = i0;

        /// <summary>Rows.</summary>
        public int Rows { get; } = rows;

        /// <summary>First column.</summary>
        public int J0 { get; } = j0;

        /// <summary>Columns.</summary>
        public int Columns { get; } = columns;

        /// <summary>Micro-panels of rows.</summary>
        public int RowPanels { get; } = Blocks(rows, GemmMicroKernel.MR);

        /// <summary>
        /// Whether whole row panels are read where A lies (<see cref="GemmMicroKernel.Kernel512Strided"/>) rather
        /// than packed: with the 512-bit kernel, when A is row-major, or transposed with its steps at most 1 KiB apart
        /// (<see cref="MaxInPlaceStepStride"/>), the two layouts that kernel reads. On the GPU machine's Xeon the tasks
        /// of a 256 × 512 × 512 product spent 23–33 µs packing (bench/RESULTS-cpu.md, stop 27), two thirds of it the A
        /// rows that every task of the same row band packs again.
        /// </summary>
        public bool ReadsAInPlace { get; } = readsAInPlace;

        /// <summary>
        /// The row panels packed (the last ones of the block): all of them, or, when A is read in place, only a last
        /// panel short of <c>MR</c> rows (reading it in place would read past A).
        /// </summary>
        public int PackedRowPanels =>
            !ReadsAInPlace ? RowPanels
            : Rows % GemmMicroKernel.MR != 0 ? 1
            : 0;

        /// <summary>
        /// Whether the block's B columns are read where they lie (<see cref="GemmMicroKernel.Kernel512Strided"/>)
        /// rather than packed: with the 512-bit kernel, when B's columns are 1 float apart (a row-major <c>[K, N]</c>
        /// B, A·B's and Aᵀ·B's; also A·Bᵀ's <c>[N, 1]</c> when K is 1), its steps at most
        /// <see cref="MaxInPlaceBStepStride"/> floats apart, and N whole panels of <c>NR</c> columns. Then a
        /// micro-panel's step is <c>NR</c> contiguous floats, as packed, and the task packs no B before its first tile,
        /// only the A rows it does not read in place: on 16 threads a 256 × 512 × 512 expert's tasks each packed 128
        /// KiB of B first, about 13 µs at 10 GB/s beside about 55 µs of multiply-adds at a core's peak.
        /// </summary>
        public bool ReadsBInPlace { get; } = readsBInPlace;

        /// <summary>Micro-panels of columns.</summary>
        public int ColumnPanels { get; } = Blocks(columns, GemmMicroKernel.NR);

        private int Tiles => RowPanels * ColumnPanels;

        /// <summary>The packed A rows (<see cref="PackedRowPanels"/>), <c>[panel][K][MR]</c>, once published.</summary>
        public float* A { get; private set; }

        /// <summary>The packed B columns, <c>[panel][K][NR]</c>, once published.</summary>
        public float* B { get; private set; }

        /// <summary>Whether the operands are packed (their stores visible to whoever reads this).</summary>
        public bool IsPublished => Volatile.Read(ref _published) == 1;

        /// <summary>Makes the packed operands available to every thread.</summary>
        public void Publish(float* a, float* b)
        {
            A = a;
            B = b;
            Volatile.Write(ref _published, 1);
        }

        /// <summary>Takes the next untaken tile, if any.</summary>
        public bool TryTake(out int tile)
        {
            tile = Interlocked.Increment(ref _next) - 1;
            return tile < Tiles;
        }

        /// <summary>Counts a taken tile as computed.</summary>
        public void Finished() => Interlocked.Increment(ref _done);

        /// <summary>Spins until every tile is computed, so the packed operands can go back to their thread.</summary>
        public void WaitUntilDone()
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) < Tiles)
                spin.SpinOnce(sleep1Threshold: -1);
        }
    }
}
