namespace MoeSharp.Compute;

internal static unsafe partial class HostGemm
{
    /// <summary>
    /// How one product of a pass is cut into C blocks (row blocks outer) and where its packed operands and panel-chunk
    /// states lie: B's panels (<c>[panel][K][NR]</c>) first, then A's (<c>[panel][K][MR]</c>) when it is packed once
    /// for every block (<see cref="PrepacksA"/>); otherwise each block packs its own A rows.
    /// </summary>
    private readonly struct ProductBlocks
    {
        /// <summary>Height of a row block: whole panels of MR rows, the last block possibly shorter.</summary>
        public int RowBlockHeight { get; init; }

        /// <summary>Width of a column block: whole panels of NR columns, the last block possibly narrower.</summary>
        public int ColumnBlockWidth { get; init; }

        /// <summary>Row blocks of the product.</summary>
        public int RowBlocks { get; init; }

        /// <summary>Column blocks of the product.</summary>
        public int ColumnBlocks { get; init; }

        /// <summary>Reduction steps of each chunk but a possibly shorter last one (<see cref="ChunkDepth"/>).</summary>
        public int ChunkSteps { get; init; }

        /// <summary>All its blocks.</summary>
        public int Count => RowBlocks * ColumnBlocks;

        /// <summary>The state index of B panel 0's chunk 0.</summary>
        public int BStates { get; init; }

        /// <summary>The state index of A panel 0's chunk 0, or -1 when each block packs its own A rows.</summary>
        public int AStates { get; init; }

        /// <summary>Floats from the product's packed B to its packed A.</summary>
        public long AOffset { get; init; }

        /// <summary>Floats of packed operands the product needs.</summary>
        public long PackedFloats { get; init; }

        /// <summary>
        /// Lays <paramref name="p"/> out in blocks of at most <paramref name="mc"/> × <paramref name="nc"/> and
        /// reduction chunks of at most <paramref name="kc"/> steps, its chunk states from
        /// <paramref name="chunkStates"/> on (advanced past them).
        /// </summary>
        public static ProductBlocks LayOut(Problem p, int mc, int nc, int kc, ref int chunkStates)
        {
            int mr = GemmMicroKernel.MR,
                nr = GemmMicroKernel.NR;
            int chunkSteps = ChunkDepth(p.K, kc);
            int chunks = Blocks(p.K, chunkSteps);
            int bPanels = Blocks(p.N, nr);
            bool prepacked = PrepacksA(p, nc);
            int aPanels = prepacked ? Blocks(p.M, mr) : 0;
            int bStates = chunkStates;
            chunkStates += bPanels * chunks;
            int aStates = prepacked ? chunkStates : -1;
            chunkStates += aPanels * chunks;
            // As many row blocks as mc gives, of (nearly) equal whole panels: 1024 rows are 7 × 132 + 100, not
            // 7 × 144 + 16, so the last round of tasks is not left to a few full blocks while the other threads wait.
            int height = Blocks(Blocks(p.M, mr), Blocks(p.M, mc)) * mr;
            long bFloats = bPanels * (long)p.K * nr;
            return new ProductBlocks
            {
                RowBlockHeight = height,
                ColumnBlockWidth = nc,
                RowBlocks = Blocks(p.M, height),
                ColumnBlocks = Blocks(p.N, nc),
                ChunkSteps = chunkSteps,
                BStates = bStates,
                AStates = aStates,
                AOffset = bFloats,
                PackedFloats = bFloats + (aPanels * (long)p.K * mr),
            };
        }
    }
}
