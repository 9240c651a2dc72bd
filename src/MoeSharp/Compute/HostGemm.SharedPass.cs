namespace MoeSharp.Compute;

internal static unsafe partial class HostGemm
{
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
}
