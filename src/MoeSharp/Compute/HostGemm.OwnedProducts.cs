namespace MoeSharp.Compute;

internal static unsafe partial class HostGemm
{
    /// <summary>
    /// Products at least two per thread (16 experts on 2 threads), in the order given: each thread takes the next
    /// product, packs its B into the thread's kept buffer and computes its C blocks one after another, so that B is
    /// used while hot in the core's cache. Once every product has been taken, a thread that runs out of work takes
    /// the blocks not yet started of products that others are still computing, reading their owner's packed panels.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Why take others' blocks: with whole products per thread the call ends when the slowest thread finishes its
    /// last product, and the others wait for up to a product each (one of 16 T 2048 experts on 2 threads: about a
    /// sixteenth of the call). Taking blocks bounds that wait by a block. On the GPU machine's Xeon (2 threads, four
    /// rotating rounds) the time a thread of those 16 experts spent outside packing and tiles fell from 0.45–1.62 ms
    /// to 0.30–0.36 (A·Bᵀ) and from 0.27–0.71 to 0.18–0.32 (Aᵀ·B); A·B's read 0.41–0.79 against 0.39–0.99
    /// (bench/RESULTS-cpu.md, stop 33).
    /// </para>
    /// <para>
    /// Why an owner's buffer stays valid for the blocks others take: blocks are taken only once no product is left
    /// to own, so no owner packs again during the call; a packed chunk is read only once its owner (or whoever claimed
    /// it) has published it (<see cref="GemmPanelChunks"/>). A block is the same kernels on the same packed values
    /// whoever computes it, so taking blocks never changes a bit.
    /// </para>
    /// </remarks>
    private static void RunOwnedProducts(Problem[] products, bool accumulate, int mc, int nc, int kc, int threads)
    {
        int count = products.Length;
        var layouts = new ProductBlocks[count];
        int chunkStates = 0;
        long mostFloats = 0;
        for (int i = 0; i < count; i++)
        {
            layouts[i] = ProductBlocks.LayOut(products[i], mc, OwnedColumnBlock(products[i], nc), kc, ref chunkStates);
            mostFloats = Math.Max(mostFloats, layouts[i].PackedFloats);
        }
        var states = new GemmPanelChunks(chunkStates);
        // Where each taken product's packed operands lie (0 until its owner has said), and its next block to start.
        var packedAt = new nint[count];
        var nextBlock = new int[count];
        int nextProduct = 0;

        void RunBlocks(int i, float* packed)
        {
            for (int b = Interlocked.Increment(ref nextBlock[i]) - 1; b < layouts[i].Count; )
            {
                RunBlock(products[i], layouts[i], packed, states, b, accumulate, threads: 1);
                b = Interlocked.Increment(ref nextBlock[i]) - 1;
            }
        }

        HostWorkerTeam.For(
            threads,
            threads,
            _ =>
            {
                using GemmScratch.Lease lease = GemmScratch.Rent(GemmScratch.Slot.PackedB, mostFloats);
                for (int i = Interlocked.Increment(ref nextProduct) - 1; i < count; )
                {
                    Volatile.Write(ref packedAt[i], (nint)lease.Pointer);
                    RunBlocks(i, lease.Pointer);
                    i = Interlocked.Increment(ref nextProduct) - 1;
                }
                // Every product is owned: the last taken have the most blocks left. A product whose owner has not yet
                // said where its panels go is left to it.
                for (int i = count - 1; i >= 0; i--)
                {
                    nint packed = Volatile.Read(ref packedAt[i]);
                    if (packed != 0)
                        RunBlocks(i, (float*)packed);
                }
            }
        );
    }

    /// <summary>
    /// The column-block width of a product that one thread computes: as wide as C up to <see cref="MaxSequentialNC"/>
    /// (its blocks run one after another, so B's reuse does not depend on the width, and narrower blocks would pack
    /// each A row once per block), unless the caller chose a blocking of its own (tests). The cap is rounded down to
    /// whole panels too: blocks find their packed panels by column / <see cref="GemmMicroKernel.NR"/>, so each must
    /// start on a panel's first column (1,024 columns would not be whole panels of 48).
    /// </summary>
    private static int OwnedColumnBlock(Problem p, int nc) =>
        nc == DefaultNC
            ? Math.Max(
                nc,
                Math.Min(
                    MaxSequentialNC / GemmMicroKernel.NR * GemmMicroKernel.NR,
                    Blocks(p.N, GemmMicroKernel.NR) * GemmMicroKernel.NR
                )
            )
            : nc;
}
