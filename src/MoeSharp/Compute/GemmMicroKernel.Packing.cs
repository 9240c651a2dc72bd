using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoeSharp.Compute;

internal static unsafe partial class GemmMicroKernel
{
    /// <summary>
    /// Steps ahead of the one being copied whose source runs <see cref="PackContiguousPanels"/> prefetches (the steps
    /// lie a whole source row apart: 2–4 KiB for the layer's shapes). On the dev machine (Zen 5, one thread, three
    /// alternations) the 16 T 2048 experts' Aᵀ·B then packed A in 0.70–0.75 ms rather than 1.41–1.78 and B in
    /// 0.41–0.45 rather than 0.53–0.64, and the call ran 1.04–1.16× as fast (2 and 8 steps ahead alike); A·B's B
    /// packed in 0.85–0.95 ms rather than 1.02–1.09 while its transposed A took 0.80–0.97 rather than 0.60–0.70, the
    /// call 0.93–1.03×; A·Bᵀ, whose packs all transpose, ran level (bench/RESULTS-cpu.md, stop 32). On the GPU
    /// machine's Xeon (one thread, two alternations) the same Aᵀ·B packed A in 1.61–1.65 ms rather than 3.40–3.42 and
    /// 1024³'s Aᵀ·B in 0.90–1.06 rather than 2.12–2.33; A·B's B packs read 2.76–3.05 ms against 3.02–3.15 (stop 33).
    /// </summary>
    private const int PackPrefetchSteps = 4;

    /// <summary>
    /// How many panels <see cref="PackContiguousPanels"/> packs in one pass over the steps when their runs are shorter
    /// than a cache line (A's panels of 6 or 12 rows) and more than <see cref="MaxNarrowPackStreams"/> are listed.
    /// </summary>
    /// <remarks>
    /// Each listed panel is a stream of writes, one run a step, and panels lie <c>width · depth</c> floats apart: for
    /// depths of 256, 512 or 1,024 steps a multiple of 4 KiB, so at any step every stream writes into the same set of
    /// the L1 cache (48 KiB, 12 ways on Zen 5 and on the GPU machine's Xeon). A run shorter than a line leaves its line
    /// to be finished at the next step, and with more streams than ways the line is evicted before that and fetched
    /// back. Eight panels a pass stay within the ways; each source row is then read once a group rather than once,
    /// which the prefetches ahead cover. On the dev machine's Zen 5 (bench/RESULTS-cpu.md, stop 41; packs alone, the
    /// median of 101, caches hot / swept) 42 panels of 6 × 512 (A of the lone T 2048 expert's Aᵀ·B at 256 bits)
    /// packed in 35 / 67 µs rather than 163 / 158, 22 panels of 12 × 1,024 (a 16-thread block of 1024³'s Aᵀ·B) in
    /// 37 / 85 rather than 119 / 121; that product at 256 bits on 2 threads then ran 1.20× as fast. Grouping wider
    /// runs too made packs alone faster but whole products at 512 bits 2–8 % slower (the 16 experts' A·B and Aᵀ·B).
    /// </remarks>
    private const int NarrowPackGroup = 8;

    /// <summary>The most narrow-run panels <see cref="PackContiguousPanels"/> packs in a single pass over the steps
    /// (<see cref="NarrowPackGroup"/>).</summary>
    private const int MaxNarrowPackStreams = 16;

    /// <summary>
    /// Packs lines <c>[first, first+lines)</c> of an operand whose line <c>l</c> at reduction step <c>p</c> is
    /// <c>src[l*lineStride + p*stepStride]</c> (A's rows with <paramref name="width"/> = <see cref="MR"/>, B's columns
    /// with <see cref="NR"/>) into <c>[P][width]</c> micro-panel order, zero-padding the lines past
    /// <paramref name="lines"/>. Whole panels whose lines are contiguous at every step go through
    /// <see cref="PackContiguousPanels"/> instead, several at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackPanel(
        float* src,
        long lineStride,
        long stepStride,
        int first,
        int lines,
        int p0,
        int depth,
        float* dst,
        int width
    )
    {
        float* s0 = src + (first * lineStride) + (p0 * stepStride);
        if (stepStride == 1)
        {
            // Each line contiguous along the steps (row-major A of A·Bᵀ and A·B, B given as [N, K] in A·Bᵀ): a
            // transpose of the lines × depth slab.
            TransposeInto(s0, lineStride, lines, depth, dst, width);
            return;
        }
        for (int p = 0; p < depth; p++)
        {
            float* s = s0 + (p * stepStride);
            float* d = dst + (p * width);
            int l = 0;
            for (; l < lines; l++)
                d[l] = s[l * lineStride];
            for (; l < width; l++)
                d[l] = 0f;
        }
    }

    /// <summary>
    /// Writes <c>dst[p * width + r] = src[r * stride + p]</c> for <c>r &lt; lines</c>, <c>p &lt; depth</c>, and zero
    /// for <c>lines ≤ r &lt; width</c>: the packed panel of <paramref name="lines"/> contiguous source lines. Blocks of
    /// 8 × 8 go through registers (AVX), then a group of 4 lines in 4 × 8 blocks (the last third of a 12-row A panel,
    /// which element by element cost more than the other two thirds together), the rest element by element; either way
    /// a pure copy, so the bits are the source's. Each group prefetches the lines after it
    /// (<see cref="PrefetchNextLines"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TransposeInto(float* src, long stride, int lines, int depth, float* dst, int width)
    {
        int r0 = 0;
        if (Avx.IsSupported)
        {
            for (; r0 + 8 <= lines; r0 += 8)
            {
                float* s = src + (r0 * stride);
                int p = 0;
                for (; p + 8 <= depth; p += 8)
                {
                    if ((p & 15) == 0)
                        PrefetchNextLines(s + (8 * stride) + p, stride);
                    Transpose8x8(s + p, stride, dst + (p * width) + r0, width);
                }
                for (; p < depth; p++)
                {
                    for (int r = 0; r < 8; r++)
                        dst[(p * width) + r0 + r] = s[(r * stride) + p];
                }
            }
            if (r0 + 4 <= lines)
            {
                float* s = src + (r0 * stride);
                int p = 0;
                for (; p + 8 <= depth; p += 8)
                {
                    if ((p & 15) == 0)
                        PrefetchNextLines(s + (4 * stride) + p, stride);
                    Transpose4x8(s + p, stride, dst + (p * width) + r0, width);
                }
                for (; p < depth; p++)
                {
                    for (int r = 0; r < 4; r++)
                        dst[(p * width) + r0 + r] = s[(r * stride) + p];
                }
                r0 += 4;
            }
        }
        if (r0 < width)
        {
            // Remaining lines (and the zero padding) a step at a time; a line's cache lines stay in L1 across steps.
            for (int p = 0; p < depth; p++)
            {
                float* d = dst + (p * width);
                int r = r0;
                for (; r < lines; r++)
                    d[r] = src[(r * stride) + p];
                for (; r < width; r++)
                    d[r] = 0f;
            }
        }
    }

    /// <summary>
    /// Prefetches the cache line at <paramref name="first"/> and at the same step of the 7 source lines after it: while
    /// a group of lines is transposed, the 8 lines that follow it (the rest of the panel, then the next panel's first,
    /// which <see cref="GemmPanelSource.PackAll"/> packs next), a line of each per 16 steps. The lines of a packed
    /// chunk are only 1–2 KiB long and 2–4 KiB apart, too short for the hardware prefetchers to lock on. On the GPU
    /// machine's Xeon (one thread, two alternations) the 16 T 2048 experts' A·Bᵀ then packed A in 0.93–0.95 ms rather
    /// than 1.40–1.44 and B in 2.11–2.21 rather than 2.38–2.68, A·B's A in 0.88–0.92 rather than 1.09–1.21; into L2
    /// only (<c>prefetcht1</c>) or 4 lines ahead in the lines being read did less. Three more alternations on a core
    /// that slowed down meanwhile read A·B's A at 1.04–1.14 ms against 1.27–1.53 and A·Bᵀ's packs within each other's
    /// spread (bench/RESULTS-cpu.md, stop 34). A prefetch never faults, so lines past the source's end cost only their
    /// issue slots.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchNextLines(float* first, long stride)
    {
        if (!Sse.IsSupported)
            return;
        for (int r = 0; r < 8; r++)
            Sse.Prefetch0(first + (r * stride));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* s, long stride, float* d, int width)
    {
        Vector256<float> r0 = Avx.LoadVector256(s),
            r1 = Avx.LoadVector256(s + stride);
        Vector256<float> r2 = Avx.LoadVector256(s + (2 * stride)),
            r3 = Avx.LoadVector256(s + (3 * stride));
        Vector256<float> r4 = Avx.LoadVector256(s + (4 * stride)),
            r5 = Avx.LoadVector256(s + (5 * stride));
        Vector256<float> r6 = Avx.LoadVector256(s + (6 * stride)),
            r7 = Avx.LoadVector256(s + (7 * stride));
        Vector256<float> t0 = Avx.UnpackLow(r0, r1),
            t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3),
            t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5),
            t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7),
            t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44),
            u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44),
            u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44),
            u5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> u6 = Avx.Shuffle(t5, t7, 0x44),
            u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(d, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(d + width, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(d + (2 * width), Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(d + (3 * width), Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(d + (4 * width), Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(d + (5 * width), Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(d + (6 * width), Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(d + (7 * width), Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>
    /// Four lines of 8 steps (<c>s[r * stride + p]</c>, r &lt; 4, p &lt; 8) into 8 steps of 4 lines
    /// (<c>d[p * width + r]</c>): pairs of lines interleaved, then 128-bit halves taken apart.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4x8(float* s, long stride, float* d, int width)
    {
        Vector256<float> r0 = Avx.LoadVector256(s),
            r1 = Avx.LoadVector256(s + stride);
        Vector256<float> r2 = Avx.LoadVector256(s + (2 * stride)),
            r3 = Avx.LoadVector256(s + (3 * stride));
        Vector256<float> t0 = Avx.UnpackLow(r0, r1),
            t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3),
            t3 = Avx.UnpackHigh(r2, r3);
        // Steps p and p + 4 of the four lines, one in each 128-bit half.
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44),
            u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44),
            u3 = Avx.Shuffle(t1, t3, 0xEE);
        u0.GetLower().Store(d);
        u1.GetLower().Store(d + width);
        u2.GetLower().Store(d + (2 * width));
        u3.GetLower().Store(d + (3 * width));
        u0.GetUpper().Store(d + (4 * width));
        u1.GetUpper().Store(d + (5 * width));
        u2.GetUpper().Store(d + (6 * width));
        u3.GetUpper().Store(d + (7 * width));
    }

    /// <summary>
    /// Packs whole panels whose lines are contiguous at every step (B given as <c>[K, N]</c> for A·B and Aᵀ·B, A given
    /// as <c>[K, M]</c> for Aᵀ·B): for every step <c>p &lt; depth</c> and every listed panel <c>q = panels[i]</c>,
    /// <paramref name="width"/> floats from <c>src + p·stride + q·width</c> to <c>destinations[i] + p·width</c>.
    /// </summary>
    /// <remarks>
    /// Steps outer, panels inner: with every panel of a row listed, the source is read row after row in address order,
    /// which the hardware prefetchers follow (many panels of runs shorter than a line go in groups of
    /// <see cref="NarrowPackGroup"/>). A panel at a time reads one or two cache lines per row a whole row apart:
    /// on Zen 4 the sixteen 512 × 512 B matrices of a T 2048 grouped call packed 2.6× slower that way (1024 × 1024:
    /// 3.7×), a tenth of the whole product's time. Each run is also prefetched <see cref="PackPrefetchSteps"/> steps
    /// ahead. A pure copy: the bits are the source's.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackContiguousPanels(
        float* src,
        long stride,
        int width,
        ReadOnlySpan<int> panels,
        ReadOnlySpan<nint> destinations,
        int depth
    )
    {
        bool narrow = width * sizeof(float) < 64 && panels.Length > MaxNarrowPackStreams;
        int group = narrow ? NarrowPackGroup : panels.Length;
        for (int first = 0; first < panels.Length; first += group)
        {
            int end = Math.Min(panels.Length, first + group);
            for (int p = 0; p < depth; p++)
            {
                float* row = src + (p * stride);
                float* ahead = row + (PackPrefetchSteps * stride);
                for (int i = first; i < end; i++)
                {
                    int offset = panels[i] * width;
                    if (Sse.IsSupported)
                    {
                        // Both ends of the run PackPrefetchSteps steps ahead (a run of 12 may straddle two cache
                        // lines); a prefetch never faults, so past the last step it only costs its issue slot.
                        Sse.Prefetch0(ahead + offset);
                        Sse.Prefetch0(ahead + offset + width - 1);
                    }
                    CopyRun(row + offset, (float*)destinations[i] + (p * width), width);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRun(float* s, float* d, int count)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= count; i += 16)
                Vector512.Store(Vector512.Load(s + i), d + i);
        }
        for (; i + 8 <= count; i += 8)
            Vector256.Store(Vector256.Load(s + i), d + i);
        if (i + 4 <= count)
        {
            Vector128.Store(Vector128.Load(s + i), d + i);
            i += 4;
        }
        for (; i < count; i++)
            d[i] = s[i];
    }
}
