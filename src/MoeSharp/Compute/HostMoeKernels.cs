using System.Collections.Immutable;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The host backend of <see cref="IMoeKernels"/>: managed code, SIMD over the row dimension
/// (<see cref="Vector{T}"/>, scalar tail computing the same IEEE operations), parallel over rows on all
/// cores. No fused multiply-add anywhere, so results match the reference's separate roundings.
/// </summary>
public sealed unsafe class HostMoeKernels : IMoeKernels, IEntryKernels, IRowKernels
{
    /// <summary>
    /// Gathers whose destination is at least this large write with non-temporal stores: the rows go straight
    /// to memory instead of first reading each destination line into a cache they would only evict again.
    /// </summary>
    private const long StreamingBytes = 32L << 20;

    /// <summary>Creates the host backend.</summary>
    /// <param name="pool">Where its tensors come from; a new pool when null.</param>
    public HostMoeKernels(TensorPool? pool = null) => Device = new HostComputeDevice(pool ?? new TensorPool());

    /// <summary>The host tensor pool behind the device's allocator.</summary>
    public TensorPool Pool => Device.Pool;

    /// <inheritdoc cref="IMoeKernels.Device" />
    public HostComputeDevice Device { get; }

    IComputeDevice IMoeKernels.Device => Device;

    /// <inheritdoc />
    public IEntryKernels Entries => this;

    /// <inheritdoc />
    public IRowKernels Rows => this;

    /// <inheritdoc />
    public void GatherReduce(TokenGather gather, Tensor destination, int destinationOffset)
        => GatherReduceCore(gather.Rows, gather.Positions, gather.Scale, gather.Initial, destination, destinationOffset);

    /// <inheritdoc />
    public void RowDots(RowPairs pairs, Tensor result, int resultOffset)
        => RowDotsCore(pairs.A, pairs.ARow, pairs.B, pairs.BRowOffset, pairs.EntriesPerBRow, result, resultOffset);

    /// <inheritdoc />
    public void Clear(Tensor tensor) => tensor.AsBytes().Clear();

    /// <inheritdoc />
    public void CopyRows(Tensor source, int sourceRow, Tensor destination, int destinationRow, int rows)
    {
        int d = source.RowLength;
        source.AsBytes().Slice(sourceRow * d * source.DType.SizeOf(), rows * d * source.DType.SizeOf())
            .CopyTo(destination.AsBytes().Slice(destinationRow * d * destination.DType.SizeOf()));
    }

    /// <inheritdoc />
    public void ScanEntries(ShardEntries shard, EntryColumns entries, Tensor scan, int scanOffset)
    {
        (Tensor topScores, _, _, _, int padTokens, int numExperts) = shard;
        EntryScan result = PrepareEntries(shard, entries);
        EntryScanWords.Encode(result, padTokens * topScores.RowLength, scan.AsSpan<int>().Slice(scanOffset, EntryScanWords.Length(numExperts)));
    }

    /// <inheritdoc />
    public void PackCountMessages(Tensor scan, int scanOffset, CountMessages messages, Tensor send)
    {
        (int ranks, int expertsPerRank, int padEntries, ImmutableArray<int> headerValues) = messages;
        ReadOnlySpan<int> header = headerValues.AsSpan();
        ReadOnlySpan<int> words = scan.AsSpan<int>().Slice(scanOffset);
        Span<int> sent = send.AsSpan<int>();
        int length = messages.Length;
        for (int q = 0; q < ranks; q++)
        {
            Span<int> message = sent.Slice(q * length, length);
            words.Slice(EntryScanWords.HeaderLength + q * expertsPerRank, expertsPerRank).CopyTo(message);
            if (q == 0 && expertsPerRank > 0) message[0] += padEntries;
            header.CopyTo(message.Slice(expertsPerRank));
            message[length - 1] = words[0] == int.MaxValue ? 0 : 1;
        }
    }

    /// <inheritdoc />
    public EntryScan PrepareEntries(ShardEntries shard, EntryColumns entries)
    {
        (Tensor topScores, Tensor expertIds, int rowOffset, int realTokens, _, int numExperts) = shard;
        (Tensor ids, Tensor entryScores) = entries;
        int k = topScores.RowLength, real = realTokens * k;
        ReadOnlySpan<float> scores = topScores.AsSpan<float>().Slice(rowOffset * k, real);
        bool wide = expertIds.DType == DType.Int64;
        ReadOnlySpan<long> ids64 = wide ? expertIds.AsSpan<long>().Slice(rowOffset * k, real) : default;
        ReadOnlySpan<int> ids32 = wide ? default : expertIds.AsSpan<int>().Slice(rowOffset * k, real);
        Span<int> outIds = ids.AsSpan<int>();
        Span<float> outScores = entryScores.AsSpan<float>();
        var counts = new int[numExperts];
        for (int i = 0; i < real; i++)
        {
            long id = wide ? ids64[i] : ids32[i];
            float s = scores[i];
            if ((ulong)id >= (ulong)numExperts || !float.IsFinite(s)) return new EntryScan(counts, i, id, s);
            outIds[i] = (int)id;
            outScores[i] = s;
            counts[id]++;
        }
        outIds.Slice(real).Clear();
        outScores.Slice(real).Clear();
        if (numExperts > 0) counts[0] += outIds.Length - real;
        return new EntryScan(counts, -1, 0, 0f);
    }

    /// <inheritdoc />
    public void BuildLocalLayout(SortedEntries sortedEntries, LocalLayoutMaps maps)
    {
        (Tensor order, Tensor entryScores, int realTokens, int topK, Tensor? rowOfSorted) = sortedEntries;
        (Tensor rowToken, Tensor rowScore, Tensor entryRow, Tensor tokenPositions) = maps;
        ReadOnlySpan<int> sorted = order.AsSpan<int>();
        ReadOnlySpan<float> entryScore = entryScores.AsSpan<float>();
        ReadOnlySpan<int> rowOf = rowOfSorted is null ? default : rowOfSorted.AsSpan<int>();
        Span<int> token = rowToken.AsSpan<int>();
        Span<float> score = rowScore.AsSpan<float>();
        Span<int> rowOfEntry = entryRow.AsSpan<int>();
        int realEntries = realTokens * topK;
        if (rowOfSorted is not null)
        {
            token.Fill(-1);
            score.Clear();
        }
        for (int i = 0; i < sorted.Length; i++)
        {
            int entry = sorted[i];
            int row = rowOfSorted is null ? i : rowOf[i];
            score[row] = entryScore[entry];
            if (entry < realEntries)
            {
                token[row] = entry / topK;
                rowOfEntry[entry] = row;
            }
            else
            {
                token[row] = -1;
            }
        }
        Span<int> pos = tokenPositions.AsSpan<int>();
        rowOfEntry.CopyTo(pos);
        for (int t = 0; t < realTokens; t++) pos.Slice(t * topK, topK).Sort();
    }


    /// <inheritdoc />
    public void BuildPermutation(ReadOnlySpan<int> blockStart, ReadOnlySpan<int> blockDestination, Tensor expertMajorRowOf, Tensor rankMajorRowOf)
    {
        Span<int> toReceived = expertMajorRowOf.AsSpan<int>();
        Span<int> toRouted = rankMajorRowOf.AsSpan<int>();
        toReceived.Fill(-1);
        for (int b = 0; b < blockDestination.Length; b++)
        {
            for (int r = blockStart[b], q = blockDestination[b]; r < blockStart[b + 1]; r++, q++)
            {
                toReceived[q] = r;
                toRouted[r] = q;
            }
        }
    }

    /// <summary>Expert ids per chunk below which sorting and counting stay on one thread.</summary>
    private const int SerialSortEntries = 1 << 16;

    /// <inheritdoc />
    public void StableSortByExpert(Tensor expertIds, ReadOnlySpan<int> counts, Tensor order)
    {
        var (idsArray, idsOffset) = expertIds.Data<int>();
        var (orderArray, orderOffset) = order.Data<int>();
        int n = expertIds.ElementCount;
        int experts = counts.Length;
        int chunks = n < SerialSortEntries ? 1 : Math.Min(HostThreads.Current * 2, n / (SerialSortEntries / 4));
        var options = new ParallelOptions { MaxDegreeOfParallelism = HostThreads.Current };
        if (chunks <= 1)
        {
            Span<int> next = experts <= 1024 ? stackalloc int[experts] : new int[experts];
            ExclusivePrefix(counts, next);
            ReadOnlySpan<int> ids = idsArray.AsSpan(idsOffset, n);
            Span<int> sorted = orderArray.AsSpan(orderOffset, n);
            for (int i = 0; i < n; i++) sorted[next[ids[i]]++] = i;
            return;
        }

        // Parallel stable counting sort: each chunk counts its ids, then writes its entries of expert e
        // after those of earlier chunks, so the result equals the serial sort.
        var chunkCounts = new int[chunks, experts];
        Parallel.For(0, chunks, options, c =>
        {
            var (start, end) = ChunkRange(n, chunks, c);
            for (int i = start; i < end; i++) chunkCounts[c, idsArray[idsOffset + i]]++;
        });
        var chunkNext = new int[chunks, experts];
        int running = 0;
        for (int e = 0; e < experts; e++)
        {
            for (int c = 0; c < chunks; c++)
            {
                chunkNext[c, e] = running;
                running += chunkCounts[c, e];
            }
        }
        Parallel.For(0, chunks, options, c =>
        {
            var (start, end) = ChunkRange(n, chunks, c);
            for (int i = start; i < end; i++) orderArray[orderOffset + chunkNext[c, idsArray[idsOffset + i]]++] = i;
        });
    }

    /// <inheritdoc />
    public void GatherRows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination)
    {
        if (destination.DType == DType.BFloat16)
        {
            GatherBFloat16Rows(source, sourceRowOffset, rowOf, scale, destination);
            return;
        }
        var (src, srcOffset) = source.Data<float>();
        var (dst, dstOffset) = destination.Data<float>();
        var (map, mapOffset) = rowOf.Data<int>();
        var (scales, scaleOffset) = DataOrNull<float>(scale);
        int d = destination.RowLength;
        int rows = rowOf.ElementCount;
        if (Avx.IsSupported && (long)rows * d * sizeof(float) >= StreamingBytes)
        {
            HostParallel.For(rows, 8L * d, (start, end) =>
            {
                fixed (float* srcArray = src)
                fixed (float* dstArray = dst)
                {
                    float* srcBase = srcArray + srcOffset, dstBase = dstArray + dstOffset;
                    for (int i = start; i < end; i++)
                    {
                        int from = map[mapOffset + i];
                        float* to = dstBase + (long)i * d;
                        if (from < 0) new Span<float>(to, d).Clear();
                        else StreamRow(srcBase + (long)(from + sourceRowOffset) * d, to, d,
                            scales is null ? 1f : scales[scaleOffset + i], scales is not null);
                    }
                }
                // Non-temporal stores are weakly ordered: fence before other threads read the rows.
                Sse.StoreFence();
            });
            return;
        }
        HostParallel.For(rows, 8L * d, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                Span<float> to = dst.AsSpan(dstOffset + i * d, d);
                int from = map[mapOffset + i];
                if (from >= 0) from += sourceRowOffset;
                if (from < 0)
                {
                    to.Clear();
                }
                else if (scales is null)
                {
                    src.AsSpan(srcOffset + from * d, d).CopyTo(to);
                }
                else
                {
                    Scale(src.AsSpan(srcOffset + from * d, d), scales[scaleOffset + i], to);
                }
            }
        });
    }

    /// <inheritdoc />
    public void ScatterTokenRows(Tensor source, int sourceRowOffset, TokenScatter map, Tensor destination)
    {
        (Tensor rowToken, Tensor entryRow, int topK, Tensor? scale) = map;
        if (destination.DType == DType.BFloat16)
        {
            ScatterBFloat16TokenRows(source, sourceRowOffset, rowToken, entryRow, topK, scale, destination);
            return;
        }
        var (src, srcOffset) = source.Data<float>();
        var (dst, dstOffset) = destination.Data<float>();
        var (tokenOf, tokenOffset) = rowToken.Data<int>();
        var (rowOfEntry, entryOffset) = entryRow.Data<int>();
        var (scales, scaleOffset) = DataOrNull<float>(scale);
        int d = destination.RowLength, rows = rowToken.ElementCount, tokens = entryRow.ElementCount / Math.Max(1, topK);
        bool streaming = Avx.IsSupported && (long)rows * d * sizeof(float) >= StreamingBytes;

        ClearTokenlessRows(dst, dstOffset, tokenOf, tokenOffset, rows, d);
        // Each token row is read once (it stays in cache for its K copies) and written to its K rows.
        HostParallel.For(tokens, 4L * d * (topK + 1), (start, end) =>
        {
            fixed (float* srcArray = src)
            fixed (float* dstArray = dst)
            {
                float* srcBase = srcArray + srcOffset, dstBase = dstArray + dstOffset;
                for (int t = start; t < end; t++)
                {
                    float* from = srcBase + (long)(sourceRowOffset + t) * d;
                    for (int k = 0; k < topK; k++)
                    {
                        int r = rowOfEntry[entryOffset + t * topK + k];
                        float s = scales is null ? 1f : scales[scaleOffset + r];
                        if (streaming) StreamRow(from, dstBase + (long)r * d, d, s, scales is not null);
                        else if (scales is null) new ReadOnlySpan<float>(from, d).CopyTo(new Span<float>(dstBase + (long)r * d, d));
                        else Scale(new ReadOnlySpan<float>(from, d), s, new Span<float>(dstBase + (long)r * d, d));
                    }
                }
                if (streaming) Sse.StoreFence();
            }
        });
    }

    /// <summary>The kernel over its parameters spread out (the seam passes them as a record).</summary>
    private void GatherReduceCore(Tensor rows, Tensor positions, Tensor? scale, Tensor? initial, Tensor destination, int destinationOffset)
    {
        if (destination.DType == DType.BFloat16)
        {
            GatherReduceBFloat16(rows, positions, scale, initial, destination, destinationOffset);
            return;
        }
        var (src, srcOffset) = rows.Data<float>();
        var (dst, dstOffset) = destination.Data<float>();
        var (pos, posOffset) = positions.Data<int>();
        var (scales, scaleOffset) = DataOrNull<float>(scale);
        var (init, initOffset) = DataOrNull<float>(initial);
        int d = destination.RowLength;
        int tokens = positions.Rows;
        int k = positions.RowLength;
        HostParallel.For(tokens, 4L * d * (k + 1), (start, end) =>
        {
            for (int t = start; t < end; t++)
            {
                ReduceToken(src, srcOffset, pos.AsSpan(posOffset + t * k, k), scales, scaleOffset,
                    init is null ? default : init.AsSpan(initOffset + t * d, d), init is not null,
                    dst.AsSpan(dstOffset + (destinationOffset + t) * d, d), d);
            }
        });
    }

    /// <summary>The kernel over its parameters spread out (the seam passes them as a record).</summary>
    private void RowDotsCore(Tensor a, Tensor aRow, Tensor b, int bRowOffset, int entriesPerBRow, Tensor result, int resultOffset)
    {
        if (a.DType == DType.BFloat16)
        {
            RowDotsBFloat16(a, aRow, b, bRowOffset, entriesPerBRow, result, resultOffset);
            return;
        }
        var (av, aOffset) = a.Data<float>();
        var (bv, bOffset) = b.Data<float>();
        var (rowsOfA, rowsOffset) = aRow.Data<int>();
        var (outv, outOffset) = result.Data<float>();
        int d = a.RowLength, m = aRow.ElementCount;
        HostParallel.For(m, 8L * d, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                ReadOnlySpan<float> x = av.AsSpan(aOffset + rowsOfA[rowsOffset + i] * d, d);
                ReadOnlySpan<float> y = bv.AsSpan(bOffset + (bRowOffset + i / entriesPerBRow) * d, d);
                double sum = 0;
                for (int j = 0; j < d; j++) sum += (double)x[j] * y[j];
                outv[outOffset + resultOffset + i] = (float)sum;
            }
        });
    }

    /// <summary>
    /// <see cref="GatherRows"/> of bfloat16 rows: a copy, or the row widened, multiplied by its float32 scale and
    /// rounded once back to bfloat16.
    /// </summary>
    private static void GatherBFloat16Rows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination)
    {
        var (map, mapOffset) = rowOf.Data<int>();
        var (src, srcOffset) = source.Data<BFloat16>();
        var (dst, dstOffset) = destination.Data<BFloat16>();
        var (scales, scaleOffset) = DataOrNull<float>(scale);
        int d = destination.RowLength, rows = rowOf.ElementCount;
        HostParallel.For(rows, 4L * d, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                Span<BFloat16> to = dst.AsSpan(dstOffset + i * d, d);
                int from = map[mapOffset + i];
                if (from < 0) to.Clear();
                else if (scales is null) src.AsSpan(srcOffset + (from + sourceRowOffset) * d, d).CopyTo(to);
                else BFloat16Rows.Scale(src.AsSpan(srcOffset + (from + sourceRowOffset) * d, d), scales[scaleOffset + i],
                    to);
            }
        });
    }

    /// <summary>
    /// <see cref="ScatterTokenRows"/> of bfloat16 rows, token by token as the float32 form: unscaled rows are raw
    /// copies (streamed as 32-bit words when D is even and the output large), scaled ones widened, multiplied in
    /// float32 and rounded once.
    /// </summary>
    private static void ScatterBFloat16TokenRows(Tensor source, int sourceRowOffset, Tensor rowToken, Tensor entryRow, int topK, Tensor? scale,
        Tensor destination)
    {
        var (src, srcOffset) = source.Data<BFloat16>();
        var (dst, dstOffset) = destination.Data<BFloat16>();
        var (tokenOf, tokenOffset) = rowToken.Data<int>();
        var (rowOfEntry, entryOffset) = entryRow.Data<int>();
        var (scales, scaleOffset) = DataOrNull<float>(scale);
        int d = destination.RowLength, rows = rowToken.ElementCount, tokens = entryRow.ElementCount / Math.Max(1, topK);
        bool streaming = Avx.IsSupported && scales is null && d % 2 == 0 && (long)rows * d * 2 >= StreamingBytes;
        ClearTokenlessRows(dst, dstOffset, tokenOf, tokenOffset, rows, d);
        HostParallel.For(tokens, 2L * d * (topK + 1), (start, end) =>
        {
            fixed (BFloat16* srcArray = src)
            fixed (BFloat16* dstArray = dst)
            {
                BFloat16* srcBase = srcArray + srcOffset, dstBase = dstArray + dstOffset;
                for (int t = start; t < end; t++)
                {
                    BFloat16* from = srcBase + (long)(sourceRowOffset + t) * d;
                    for (int k = 0; k < topK; k++)
                    {
                        int r = rowOfEntry[entryOffset + t * topK + k];
                        BFloat16* to = dstBase + (long)r * d;
                        // A pair of bfloat16 values is moved as one 32-bit word: a bit copy, no arithmetic.
                        if (streaming) StreamRow((float*)from, (float*)to, d / 2, 1f, scale: false);
                        else if (scales is null) new ReadOnlySpan<BFloat16>(from, d).CopyTo(new Span<BFloat16>(to, d));
                        else BFloat16Rows.Scale(new ReadOnlySpan<BFloat16>(from, d), scales[scaleOffset + r],
                            new Span<BFloat16>(to, d));
                    }
                }
                if (streaming) Sse.StoreFence();
            }
        });
    }

    /// <summary>Zeros the rows no token lands in (SP pad entries, alignment padding) before a token-order scatter.</summary>
    private static void ClearTokenlessRows<T>(T[] destination, int destinationOffset, int[] rowToken, int rowTokenOffset,
        int rows, int d) where T : unmanaged
        => HostParallel.For(rows, 8L, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                if (rowToken[rowTokenOffset + r] < 0) destination.AsSpan(destinationOffset + r * d, d).Clear();
            }
        });

    /// <summary>
    /// <see cref="GatherReduce"/> of bfloat16 rows: each token's terms (widened, scaled in float32) are added in
    /// order in float32 accumulators that start from the widened initial row (or +0) and are rounded once, a vector
    /// of values at a time across all of the token's rows (the accumulators stay in registers).
    /// </summary>
    private static void GatherReduceBFloat16(Tensor rows, Tensor positions, Tensor? scale, Tensor? initial, Tensor destination, int destinationOffset)
    {
        var (src, srcOffset) = rows.Data<BFloat16>();
        var (dst, dstOffset) = destination.Data<BFloat16>();
        var (pos, posOffset) = positions.Data<int>();
        var (scales, scaleOffset) = DataOrNull<float>(scale);
        var (init, initOffset) = DataOrNull<BFloat16>(initial);
        int d = destination.RowLength, tokens = positions.Rows, k = positions.RowLength;
        HostParallel.For(tokens, 2L * d * (k + 1), (start, end) =>
        {
            for (int t = start; t < end; t++)
            {
                ReduceBFloat16Token(src, srcOffset, pos.AsSpan(posOffset + t * k, k), scales, scaleOffset,
                    init is null ? default : init.AsSpan(initOffset + t * d, d), init is not null,
                    dst.AsSpan(dstOffset + (destinationOffset + t) * d, d), d);
            }
        });
    }

    /// <summary>One token's ordered bfloat16 sum, <see cref="Vector{T}"/> of ushort (two float vectors) at a time, scalar tail.</summary>
    private static void ReduceBFloat16Token(BFloat16[] rowArray, int rowsOffset, ReadOnlySpan<int> positions,
        float[]? scales, int scalesOffset, ReadOnlySpan<BFloat16> initial, bool hasInitial, Span<BFloat16> destination, int d)
    {
        ReadOnlySpan<BFloat16> rows = rowArray.AsSpan(rowsOffset);
        ReadOnlySpan<ushort> rowBits = MemoryMarshal.Cast<BFloat16, ushort>(rows);
        ReadOnlySpan<ushort> initialBits = MemoryMarshal.Cast<BFloat16, ushort>(initial);
        int width = Vector<ushort>.Count, j = 0;
        for (; j <= d - width; j += width)
        {
            Vector<float> low = Vector<float>.Zero, high = Vector<float>.Zero;
            if (hasInitial) (low, high) = BFloat16Rows.WidenVector(new Vector<ushort>(initialBits.Slice(j)));
            foreach (int p in positions)
            {
                if (p < 0) continue;
                var (a, b) = BFloat16Rows.WidenVector(new Vector<ushort>(rowBits.Slice(p * d + j)));
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
            BFloat16Rows.NarrowVector(low, high).CopyTo(MemoryMarshal.Cast<BFloat16, ushort>(destination).Slice(j));
        }
        for (; j < d; j++)
        {
            float acc = hasInitial ? initial[j].ToSingle() : 0f;
            foreach (int p in positions)
            {
                if (p < 0) continue;
                float v = rows[p * d + j].ToSingle();
                acc += scales is null ? v : v * scales[scalesOffset + p];
            }
            destination[j] = BFloat16.FromSingle(acc);
        }
    }

    /// <summary><see cref="RowDots"/> of bfloat16 rows (widened exactly; the float64 sum is the same operation).</summary>
    private static void RowDotsBFloat16(Tensor a, Tensor aRow, Tensor b, int bRowOffset, int entriesPerBRow, Tensor result, int resultOffset)
    {
        var (av, aOffset) = a.Data<BFloat16>();
        var (bv, bOffset) = b.Data<BFloat16>();
        var (rowsOfA, rowsOffset) = aRow.Data<int>();
        var (outv, outOffset) = result.Data<float>();
        int d = a.RowLength, m = aRow.ElementCount;
        HostParallel.For(m, 4L * d, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                ReadOnlySpan<BFloat16> x = av.AsSpan(aOffset + rowsOfA[rowsOffset + i] * d, d);
                ReadOnlySpan<BFloat16> y = bv.AsSpan(bOffset + (bRowOffset + i / entriesPerBRow) * d, d);
                double sum = 0;
                for (int j = 0; j < d; j++) sum += (double)x[j].ToSingle() * y[j].ToSingle();
                outv[outOffset + resultOffset + i] = (float)sum;
            }
        });
    }

    /// <summary>One token's ordered sum over D, vector by vector: the token's rows are read once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ReduceToken(float[] rowArray, int rowsOffset, ReadOnlySpan<int> positions, float[]? scales,
        int scalesOffset, ReadOnlySpan<float> initial, bool hasInitial, Span<float> destination, int d)
    {
        int width = Vector<float>.Count;
        int j = 0;
        ReadOnlySpan<float> rows = rowArray.AsSpan(rowsOffset);
        ref float rowsBase = ref MemoryMarshal.GetReference(rows);
        for (; j <= d - width; j += width)
        {
            Vector<float> acc = hasInitial ? new Vector<float>(initial.Slice(j)) : Vector<float>.Zero;
            foreach (int p in positions)
            {
                if (p < 0) continue;
                var row = Vector.LoadUnsafe(ref rowsBase, (nuint)((long)p * d + j));
                // Rounded product, then rounded sum: the JIT does not contract this into an FMA.
                acc += scales is null ? row : row * scales[scalesOffset + p];
            }
            acc.CopyTo(destination.Slice(j));
        }
        for (; j < d; j++)
        {
            float acc = hasInitial ? initial[j] : 0f;
            foreach (int p in positions)
            {
                if (p < 0) continue;
                float v = rowArray[rowsOffset + (long)p * d + j];
                acc += scales is null ? v : v * scales[scalesOffset + p];
            }
            destination[j] = acc;
        }
    }

    /// <summary>
    /// <c>to = from · s</c> (or a copy) with 32-byte non-temporal stores once <paramref name="to"/> is aligned;
    /// the same IEEE product per element as <see cref="Scale"/>.
    /// </summary>
    private static void StreamRow(float* from, float* to, int n, float s, bool scale)
    {
        int j = 0;
        for (; j < n && ((nuint)(to + j) & 31) != 0; j++) to[j] = scale ? from[j] * s : from[j];
        Vector256<float> vs = Vector256.Create(s);
        if (scale)
        {
            for (; j <= n - 8; j += 8) Avx.StoreAlignedNonTemporal(to + j, Avx.Multiply(Avx.LoadVector256(from + j), vs));
        }
        else
        {
            for (; j <= n - 8; j += 8) Avx.StoreAlignedNonTemporal(to + j, Avx.LoadVector256(from + j));
        }
        for (; j < n; j++) to[j] = scale ? from[j] * s : from[j];
    }

    /// <summary><c>to = from · s</c>, one rounding per element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scale(ReadOnlySpan<float> from, float s, Span<float> to)
    {
        int width = Vector<float>.Count;
        int j = 0;
        var vs = new Vector<float>(s);
        for (; j <= from.Length - width; j += width)
        {
            (new Vector<float>(from.Slice(j)) * vs).CopyTo(to.Slice(j));
        }
        for (; j < from.Length; j++) to[j] = from[j] * s;
    }

    private static void ExclusivePrefix(ReadOnlySpan<int> counts, Span<int> starts)
    {
        int running = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            starts[e] = running;
            running += counts[e];
        }
    }

    /// <summary>The array and offset of an optional tensor: <c>(null, 0)</c> when there is none.</summary>
    private static (T[]? Array, int Offset) DataOrNull<T>(Tensor? tensor) where T : unmanaged
        => tensor is null ? (null, 0) : tensor.Data<T>();

    private static (int Start, int End) ChunkRange(int n, int chunks, int c)
        => ((int)((long)n * c / chunks), (int)((long)n * (c + 1) / chunks));
}
