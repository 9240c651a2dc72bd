using System.Runtime.InteropServices;
using MoeSharp.Compute;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// The GEMM micro-kernel's own rate on <c>N</c> threads of the host kernels' worker team: each thread runs
/// <see cref="GemmMicroKernel.Kernel"/> over packed panels that stay in its core's cache (8 row panels by 8 column
/// panels of one <see cref="Depth"/>-step block: about 640 KiB at 512 bits), with no packing, no edge
/// tiles and no memory traffic beyond the core's own caches. It is what the full GEMM could reach at that moment if
/// packing and partial tiles cost nothing: the ceiling for cache-bound work, next to the register-only ceiling of
/// <see cref="FmaPeakProbe"/>.
/// </summary>
/// <remarks>
/// Why a second ceiling: on the GPU machine's Xeon one core ran this loop at about 95 % of the register-only probe in
/// some seconds and at about 70 % in others, at every reduction depth, while the register-only probe stayed put
/// (bench/RESULTS-cpu.md, stop 35, calls B–D). A product measured in the slow state reads low against the FMA peak
/// whatever its code does; its share of this ceiling, taken beside it, tells the two apart.
/// </remarks>
internal static unsafe class KernelCeilingProbe
{
    private const int RowPanels = 8;
    private const int ColumnPanels = 8;

    /// <summary>
    /// Reduction steps of the block: 384 at 512 bits, the GEMM's chunk depth until stop 39 (now 1,024, whose block
    /// would outgrow a 1 MiB L2), kept so the ceiling stays comparable with every earlier stop's; 256 at 256 bits.
    /// The kernel alone reads the same at every depth from 128 to 512 (bench/RESULTS-cpu.md, stop 35).
    /// </summary>
    private static readonly int Depth = GemmMicroKernel.Wide ? 384 : 256;

    /// <summary>Timed passes over the block per thread and round (about 3 ms at 150 GFLOP/s a thread).</summary>
    private const int Passes = 24;

    /// <summary>Each task index's packed panels and C block, kept for the process: allocating them per call would put
    /// page faults beside every product.</summary>
    private static readonly List<nint> KeptBlocks = [];
    private static readonly object GrowLock = new();

    /// <summary>
    /// The best of <paramref name="rounds"/> timed rounds, in GFLOP/s of all threads together, of
    /// <paramref name="threads"/> team threads each running <see cref="Passes"/> passes of the micro-kernel over its
    /// own cache-resident block, after one untimed pass that brings the block into the core running it. A round lasts
    /// from the first thread's start to the last one's end (<see cref="TeamRounds"/>).
    /// </summary>
    public static double Measure(int threads, int rounds)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        int mr = GemmMicroKernel.MR,
            nr = GemmMicroKernel.NR,
            depth = Depth;
        long aFloats = (long)RowPanels * mr * depth,
            bFloats = (long)ColumnPanels * nr * depth;
        int ldc = ColumnPanels * nr;
        EnsureBlocks(threads, aFloats + bFloats + ((long)RowPanels * mr * ldc));
        double flopsPerThread = 2.0 * RowPanels * mr * ColumnPanels * nr * depth * Passes;
        // Each task's A panels, then its B panels, then its C block.
        void Run(int task, int passes)
        {
            float* a = (float*)KeptBlocks[task];
            for (int p = 0; p < passes; p++)
                Pass(a, a + aFloats, a + aFloats + bFloats, ldc, depth);
        }
        double seconds = TeamRounds.ShortestSeconds(threads, rounds, task => Run(task, 1), task => Run(task, Passes));
        return threads * flopsPerThread / seconds / 1e9;
    }

    /// <summary>Every tile of the block from zero, column panel by column panel, as the GEMM orders them.</summary>
    private static void Pass(float* a, float* b, float* c, int ldc, int depth)
    {
        int mr = GemmMicroKernel.MR,
            nr = GemmMicroKernel.NR;
        for (int jp = 0; jp < ColumnPanels; jp++)
        {
            for (int ip = 0; ip < RowPanels; ip++)
            {
                GemmMicroKernel.Kernel(
                    depth,
                    a + ((long)ip * mr * depth),
                    b + ((long)jp * nr * depth),
                    c + ((long)ip * mr * ldc) + (jp * nr),
                    ldc,
                    load: false
                );
            }
        }
    }

    /// <summary>Allocates (64-byte aligned, filled with small values that keep every chain finite) the blocks of task
    /// indices not yet served.</summary>
    private static void EnsureBlocks(int threads, long floats)
    {
        lock (GrowLock)
        {
            while (KeptBlocks.Count < threads)
            {
                var block = (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
                for (long i = 0; i < floats; i++)
                    block[i] = ((i % 7) - 3) * 0.01f;
                KeptBlocks.Add((nint)block);
            }
        }
    }
}
