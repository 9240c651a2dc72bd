using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using MoeSharp.Tensors;

namespace MoeSharp.Compute.Rows;

/// <summary>
/// The row kernels of <see cref="HostMoeKernels"/> written once over the row element: each value is widened to
/// float32, multiplied and added in float32 (no fused multiply-add anywhere, so results match the reference's separate
/// roundings) and narrowed once; copies move bits. SIMD a block at a time (<see cref="IRowElement{TElement}"/>), a
/// scalar tail computing the same IEEE operations, parallel over rows or tokens on all cores.
/// </summary>
/// <typeparam name="TElement">The row element as stored.</typeparam>
/// <typeparam name="TOps">Its widening and narrowing; a struct, so the JIT compiles each instantiation on its
/// own.</typeparam>
internal sealed unsafe class HostRowKernels<TElement, TOps> : HostRowKernels
    where TElement : unmanaged
    where TOps : struct, IRowElement<TElement>
{
    /// <summary>
    /// Outputs at least this large are written with non-temporal stores: the rows go straight to memory instead of
    /// first reading each destination line into a cache they would only evict again.
    /// </summary>
    private const long StreamingBytes = 32L << 20;

    private HostRowKernels() { }

    /// <summary>The one instance (the kernels keep no state).</summary>
    public static HostRowKernels<TElement, TOps> Instance { get; } = new();

    /// <inheritdoc />
    /// <remarks>A copy, or the row widened, multiplied by its float32 scale and rounded once.</remarks>
    public override void GatherRows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination)
    {
        var (src, srcOffset) = source.Data<TElement>();
        var (dst, dstOffset) = destination.Data<TElement>();
        var (map, mapOffset) = rowOf.Data<int>();
        var (scales, scaleOffset) = DataOrNull<float>(scale);
        int d = destination.RowLength;
        int rows = rowOf.ElementCount;
        bool streaming = NonTemporalStore.IsSupported && (long)rows * d * sizeof(TElement) >= StreamingBytes;
        if (streaming && TOps.StreamsLargeOutputs)
        {
            HostParallel.For(
                rows,
                2L * sizeof(TElement) * d,
                [MethodImpl(MethodImplOptions.AggressiveOptimization)]
                (start, end) =>
                {
                    fixed (TElement* srcArray = src)
                    fixed (TElement* dstArray = dst)
                    {
                        TElement* srcBase = srcArray + srcOffset,
                            dstBase = dstArray + dstOffset;
                        for (int i = start; i < end; i++)
                        {
                            int from = map[mapOffset + i];
                            TElement* to = dstBase + (long)i * d;
                            if (from < 0)
                                new Span<TElement>(to, d).Clear();
                            else
                                StreamRow(
                                    srcBase + (long)(from + sourceRowOffset) * d,
                                    to,
                                    d,
                                    scales is null ? 1f : scales[scaleOffset + i],
                                    scales is not null
                                );
                        }
                    }
                    // Non-temporal stores are weakly ordered: fence before other threads read the rows.
                    Sse.StoreFence();
                }
            );
            return;
        }
        HostParallel.For(
            rows,
            2L * sizeof(TElement) * d,
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            (start, end) =>
            {
                for (int i = start; i < end; i++)
                {
                    Span<TElement> to = dst.AsSpan(dstOffset + i * d, d);
                    int from = map[mapOffset + i];
                    if (from >= 0)
                        from += sourceRowOffset;
                    if (from < 0)
                        to.Clear();
                    else if (scales is null)
                        src.AsSpan(srcOffset + from * d, d).CopyTo(to);
                    else
                        RowSpans<TElement, TOps>.Scale(
                            src.AsSpan(srcOffset + from * d, d),
                            scales[scaleOffset + i],
                            to
                        );
                }
            }
        );
    }

    /// <inheritdoc />
    /// <remarks>Each token row is read once (it stays in cache for its K copies) and written to its K rows.</remarks>
    public override void ScatterTokenRows(
        Tensor source,
        int sourceRowOffset,
        Tensor rowToken,
        Tensor entryRow,
        int topK,
        Tensor? scale,
        Tensor destination
    )
    {
        var (src, srcOffset) = source.Data<TElement>();
        var (dst, dstOffset) = destination.Data<TElement>();
        var (tokenOf, tokenOffset) = rowToken.Data<int>();
        var (rowOfEntry, entryOffset) = entryRow.Data<int>();
        var (scales, scaleOffset) = DataOrNull<float>(scale);
        int d = destination.RowLength,
            rows = rowToken.ElementCount,
            tokens = entryRow.ElementCount / Math.Max(1, topK);
        bool streaming =
            NonTemporalStore.IsSupported
            && (long)rows * d * sizeof(TElement) >= StreamingBytes
            && (scales is null || TOps.StreamsLargeOutputs);

        ClearTokenlessRows(dst, dstOffset, tokenOf, tokenOffset, rows, d);
        HostParallel.For(
            tokens,
            (long)sizeof(TElement) * d * (topK + 1),
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            (start, end) =>
            {
                fixed (TElement* srcArray = src)
                fixed (TElement* dstArray = dst)
                {
                    TElement* srcBase = srcArray + srcOffset,
                        dstBase = dstArray + dstOffset;
                    for (int t = start; t < end; t++)
                    {
                        TElement* from = srcBase + (long)(sourceRowOffset + t) * d;
                        for (int k = 0; k < topK; k++)
                        {
                            int r = rowOfEntry[entryOffset + t * topK + k];
                            TElement* to = dstBase + (long)r * d;
                            float s = scales is null ? 1f : scales[scaleOffset + r];
                            if (streaming)
                                StreamRow(from, to, d, s, scales is not null);
                            else if (scales is null)
                                new ReadOnlySpan<TElement>(from, d).CopyTo(new Span<TElement>(to, d));
                            else
                                RowSpans<TElement, TOps>.Scale(
                                    new ReadOnlySpan<TElement>(from, d),
                                    s,
                                    new Span<TElement>(to, d)
                                );
                        }
                    }
                    if (streaming)
                        Sse.StoreFence();
                }
            }
        );
    }

    /// <inheritdoc />
    /// <remarks>
    /// Each token's terms (widened, scaled in float32) are added in slot order in float32 accumulators that start from
    /// the widened initial row (or +0) and are rounded once, a block of values at a time across all of the token's
    /// rows (the accumulators stay in registers, the token's rows are read once).
    /// </remarks>
    public override void GatherReduce(
        Tensor rows,
        Tensor positions,
        Tensor? scale,
        Tensor? initial,
        Tensor destination,
        int destinationOffset
    )
    {
        var (src, srcOffset) = rows.Data<TElement>();
        var (dst, dstOffset) = destination.Data<TElement>();
        var (pos, posOffset) = positions.Data<int>();
        var (scales, scaleOffset) = DataOrNull<float>(scale);
        var (init, initOffset) = DataOrNull<TElement>(initial);
        int d = destination.RowLength,
            tokens = positions.Rows,
            k = positions.RowLength;
        HostParallel.For(
            tokens,
            (long)sizeof(TElement) * d * (k + 1),
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            (start, end) =>
            {
                for (int t = start; t < end; t++)
                {
                    ReduceToken(
                        src.AsSpan(srcOffset),
                        pos.AsSpan(posOffset + t * k, k),
                        scales,
                        scaleOffset,
                        init is null ? default : init.AsSpan(initOffset + t * d, d),
                        init is not null,
                        dst.AsSpan(dstOffset + (destinationOffset + t) * d, d),
                        d
                    );
                }
            }
        );
    }

    /// <inheritdoc />
    /// <remarks>As <see cref="GatherReduce"/>, each row read at its address.</remarks>
    public override void GatherReduceAt(
        nint[] rowAddress,
        Tensor positions,
        Tensor? scale,
        Tensor? initial,
        Tensor destination,
        int destinationOffset
    )
    {
        var (dst, dstOffset) = destination.Data<TElement>();
        var (pos, posOffset) = positions.Data<int>();
        var (scales, scaleOffset) = DataOrNull<float>(scale);
        var (init, initOffset) = DataOrNull<TElement>(initial);
        int d = destination.RowLength,
            tokens = positions.Rows,
            k = positions.RowLength;
        HostParallel.For(
            tokens,
            (long)sizeof(TElement) * d * (k + 1),
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            (start, end) =>
            {
                for (int t = start; t < end; t++)
                {
                    ReduceTokenAt(
                        rowAddress,
                        pos.AsSpan(posOffset + t * k, k),
                        scales,
                        scaleOffset,
                        init is null ? default : init.AsSpan(initOffset + t * d, d),
                        init is not null,
                        dst.AsSpan(dstOffset + (destinationOffset + t) * d, d),
                        d
                    );
                }
            }
        );
    }

    /// <inheritdoc />
    /// <remarks>Values widened exactly; each product and the sum in float64, ascending d, rounded once.</remarks>
    public override void RowDots(
        Tensor a,
        Tensor aRow,
        Tensor b,
        int bRowOffset,
        int entriesPerBRow,
        Tensor result,
        int resultOffset
    )
    {
        var (av, aOffset) = a.Data<TElement>();
        var (bv, bOffset) = b.Data<TElement>();
        var (rowsOfA, rowsOffset) = aRow.Data<int>();
        var (outv, outOffset) = result.Data<float>();
        int d = a.RowLength,
            m = aRow.ElementCount;
        HostParallel.For(
            m,
            2L * sizeof(TElement) * d,
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            (start, end) =>
            {
                int i = start;
                // Four dots at once: four independent chains of float64 additions instead of one waiting on the
                // adder's latency; each chain still adds its own products in ascending d.
                for (; i + 4 <= end; i += 4)
                {
                    FourDots(
                        av.AsSpan(aOffset + rowsOfA[rowsOffset + i] * d, d),
                        av.AsSpan(aOffset + rowsOfA[rowsOffset + i + 1] * d, d),
                        av.AsSpan(aOffset + rowsOfA[rowsOffset + i + 2] * d, d),
                        av.AsSpan(aOffset + rowsOfA[rowsOffset + i + 3] * d, d),
                        bv.AsSpan(bOffset + (bRowOffset + i / entriesPerBRow) * d, d),
                        bv.AsSpan(bOffset + (bRowOffset + (i + 1) / entriesPerBRow) * d, d),
                        bv.AsSpan(bOffset + (bRowOffset + (i + 2) / entriesPerBRow) * d, d),
                        bv.AsSpan(bOffset + (bRowOffset + (i + 3) / entriesPerBRow) * d, d),
                        outv.AsSpan(outOffset + resultOffset + i, 4)
                    );
                }
                for (; i < end; i++)
                {
                    ReadOnlySpan<TElement> x = av.AsSpan(aOffset + rowsOfA[rowsOffset + i] * d, d);
                    ReadOnlySpan<TElement> y = bv.AsSpan(bOffset + (bRowOffset + i / entriesPerBRow) * d, d);
                    double sum = 0;
                    for (int j = 0; j < d; j++)
                        sum += (double)TOps.Widen(x[j]) * TOps.Widen(y[j]);
                    outv[outOffset + resultOffset + i] = (float)sum;
                }
            }
        );
    }

    /// <summary>Four of <see cref="RowDots"/>'s dots, <c>x_r · y_r</c>, each the same float64 chain as alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourDots(
        ReadOnlySpan<TElement> x0,
        ReadOnlySpan<TElement> x1,
        ReadOnlySpan<TElement> x2,
        ReadOnlySpan<TElement> x3,
        ReadOnlySpan<TElement> y0,
        ReadOnlySpan<TElement> y1,
        ReadOnlySpan<TElement> y2,
        ReadOnlySpan<TElement> y3,
        Span<float> result
    )
    {
        int d = x0.Length;
        if (x1.Length != d || x2.Length != d || x3.Length != d || y0.Length != d)
            throw new ArgumentException("rows of different lengths");
        if (y1.Length != d || y2.Length != d || y3.Length != d)
            throw new ArgumentException("rows of different lengths");
        double s0 = 0,
            s1 = 0,
            s2 = 0,
            s3 = 0;
        for (int j = 0; j < d; j++)
        {
            s0 += (double)TOps.Widen(x0[j]) * TOps.Widen(y0[j]);
            s1 += (double)TOps.Widen(x1[j]) * TOps.Widen(y1[j]);
            s2 += (double)TOps.Widen(x2[j]) * TOps.Widen(y2[j]);
            s3 += (double)TOps.Widen(x3[j]) * TOps.Widen(y3[j]);
        }
        result[0] = (float)s0;
        result[1] = (float)s1;
        result[2] = (float)s2;
        result[3] = (float)s3;
    }

    /// <summary>One token's ordered sum over D, a block at a time across its rows, then a scalar tail.</summary>
    /// <remarks>
    /// Compiled fully optimised at its first call: unoptimised (tier-0) code would call the operator struct's methods
    /// instead of inlining them, which made the first calls of small reduces several times slower than the old
    /// non-generic code. The same holds for <see cref="StreamRow"/> and <see cref="RowSpans{TElement, TOps}.Scale"/>.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReduceToken(
        ReadOnlySpan<TElement> rows,
        ReadOnlySpan<int> positions,
        float[]? scales,
        int scalesOffset,
        ReadOnlySpan<TElement> initial,
        bool hasInitial,
        Span<TElement> destination,
        int d
    )
    {
        // The block loop reads without bounds checks: every position's row must lie inside the rows.
        foreach (int p in positions)
        {
            if (p >= 0 && (long)(p + 1) * d > rows.Length)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(positions),
                    p,
                    $"a position past the {rows.Length / d} rows"
                );
            }
        }
        int block = IRowElement<TElement>.BlockLength,
            j = 0;
        ref TElement rowsBase = ref MemoryMarshal.GetReference(rows);
        for (; j <= d - block; j += block)
        {
            Vector<float> low = Vector<float>.Zero,
                high = Vector<float>.Zero;
            if (hasInitial)
                (low, high) = TOps.WidenBlock(in initial[j]);
            foreach (int p in positions)
            {
                if (p < 0)
                    continue;
                var (a, b) = TOps.WidenBlock(in Unsafe.Add(ref rowsBase, (nint)((long)p * d + j)));
                if (scales is not null)
                {
                    var s = new Vector<float>(scales[scalesOffset + p]);
                    a *= s;
                    b *= s;
                }
                // Rounded product, then rounded sum: the JIT does not contract this into an FMA.
                low += a;
                high += b;
            }
            TOps.NarrowBlock<PlainStore>(low, high, ref destination[j]);
        }
        for (; j < d; j++)
        {
            float acc = hasInitial ? TOps.Widen(initial[j]) : 0f;
            foreach (int p in positions)
            {
                if (p < 0)
                    continue;
                float v = TOps.Widen(rows[p * d + j]);
                acc += scales is null ? v : v * scales[scalesOffset + p];
            }
            destination[j] = TOps.Narrow(acc);
        }
    }

    /// <summary>
    /// <see cref="ReduceToken"/> with the token's rows at their addresses: the same widening, products and float32 adds
    /// in slot order, block by block, then the same scalar tail.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReduceTokenAt(
        nint[] rowAddress,
        ReadOnlySpan<int> positions,
        float[]? scales,
        int scalesOffset,
        ReadOnlySpan<TElement> initial,
        bool hasInitial,
        Span<TElement> destination,
        int d
    )
    {
        foreach (int p in positions)
        {
            if (p >= rowAddress.Length)
                throw new ArgumentOutOfRangeException(
                    nameof(positions),
                    p,
                    $"a position past the {rowAddress.Length} rows"
                );
        }
        int block = IRowElement<TElement>.BlockLength,
            j = 0;
        for (; j <= d - block; j += block)
        {
            Vector<float> low = Vector<float>.Zero,
                high = Vector<float>.Zero;
            if (hasInitial)
                (low, high) = TOps.WidenBlock(in initial[j]);
            foreach (int p in positions)
            {
                if (p < 0)
                    continue;
                var (a, b) = TOps.WidenBlock(in ((TElement*)rowAddress[p])[j]);
                if (scales is not null)
                {
                    var s = new Vector<float>(scales[scalesOffset + p]);
                    a *= s;
                    b *= s;
                }
                low += a;
                high += b;
            }
            TOps.NarrowBlock<PlainStore>(low, high, ref destination[j]);
        }
        for (; j < d; j++)
        {
            float acc = hasInitial ? TOps.Widen(initial[j]) : 0f;
            foreach (int p in positions)
            {
                if (p < 0)
                    continue;
                float v = TOps.Widen(((TElement*)rowAddress[p])[j]);
                acc += scales is null ? v : v * scales[scalesOffset + p];
            }
            destination[j] = TOps.Narrow(acc);
        }
    }

    /// <summary>
    /// <c>to = from · s</c> (or a bit copy) with 32-byte non-temporal stores once <paramref name="to"/> is aligned; the
    /// same IEEE product per element as <see cref="RowSpans{TElement, TOps}.Scale"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StreamRow(TElement* from, TElement* to, int n, float s, bool scale)
    {
        int j = 0;
        for (; j < n && ((nuint)(to + j) & 31) != 0; j++)
        {
            to[j] = scale ? TOps.Narrow(TOps.Widen(from[j]) * s) : from[j];
        }
        if (scale)
        {
            int block = IRowElement<TElement>.BlockLength;
            var vs = new Vector<float>(s);
            for (; j <= n - block; j += block)
            {
                var (low, high) = TOps.WidenBlock(in from[j]);
                TOps.NarrowBlock<NonTemporalStore>(low * vs, high * vs, ref to[j]);
            }
        }
        else
        {
            // A copy moves bits, never values (a signalling NaN stays one): 32 bytes at a time, whatever the element.
            int perStore = 32 / sizeof(TElement);
            for (; j <= n - perStore; j += perStore)
            {
                Avx.StoreAlignedNonTemporal((byte*)(to + j), Avx.LoadVector256((byte*)(from + j)));
            }
        }
        for (; j < n; j++)
            to[j] = scale ? TOps.Narrow(TOps.Widen(from[j]) * s) : from[j];
    }

    /// <summary>
    /// Zeros the rows no token lands in (SP pad entries, alignment padding) before a token-order scatter.
    /// </summary>
    private static void ClearTokenlessRows(
        TElement[] destination,
        int destinationOffset,
        int[] rowToken,
        int rowTokenOffset,
        int rows,
        int d
    ) =>
        HostParallel.For(
            rows,
            8L,
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            (start, end) =>
            {
                for (int r = start; r < end; r++)
                {
                    if (rowToken[rowTokenOffset + r] < 0)
                        destination.AsSpan(destinationOffset + r * d, d).Clear();
                }
            }
        );

    /// <summary>The array and offset of an optional tensor: <c>(null, 0)</c> when there is none.</summary>
    private static (T[]? Array, int Offset) DataOrNull<T>(Tensor? tensor)
        where T : unmanaged => tensor is null ? (null, 0) : tensor.Data<T>();
}
