using System.Collections.Immutable;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MoeSharp.Compute.Rows;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The host backend of <see cref="IMoeKernels"/>: managed code, parallel over rows on all cores. The row kernels
/// (gather, scatter, gather-reduce, row dots) are written once over the row element (<see cref="HostRowKernels"/>
/// picks the instantiation by dtype): SIMD over the row dimension, a scalar tail computing the same IEEE operations,
/// no fused multiply-add anywhere, so results match the reference's separate roundings.
/// </summary>
public sealed class HostMoeKernels : IMoeKernels, IEntryKernels, IRowKernels
{
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
    public unsafe void Clear(Tensor tensor)
    {
        Span<byte> bytes = tensor.AsBytes();
        fixed (byte* p = bytes)
        {
            nint start = (nint)p;
            // A serial clear of a large tensor runs at one core's store bandwidth; chunks over threads reach the
            // memory's.
            HostParallel.For(
                bytes.Length,
                1,
                (first, end) => new Span<byte>((byte*)start + first, end - first).Clear()
            );
        }
    }

    /// <inheritdoc />
    public void CopyRows(Tensor source, int sourceRow, Tensor destination, int destinationRow, int rows)
    {
        int d = source.RowLength;
        source
            .AsBytes()
            .Slice(sourceRow * d * source.DType.SizeOf(), rows * d * source.DType.SizeOf())
            .CopyTo(destination.AsBytes().Slice(destinationRow * d * destination.DType.SizeOf()));
    }

    /// <inheritdoc />
    public void ScanEntries(ShardEntries shard, EntryColumns entries, Tensor scan, int scanOffset)
    {
        (Tensor topScores, _, _, _, int padTokens, int numExperts) = shard;
        EntryScan result = PrepareEntries(shard, entries);
        EntryScanWords.Encode(
            result,
            padTokens * topScores.RowLength,
            scan.AsSpan<int>().Slice(scanOffset, EntryScanWords.Length(numExperts))
        );
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
            if (q == 0 && expertsPerRank > 0)
                message[0] += padEntries;
            header.CopyTo(message.Slice(expertsPerRank));
            message[length - 1] = words[0] == int.MaxValue ? 0 : 1;
        }
    }

    /// <inheritdoc />
    /// <remarks>Compiled optimized at once (as the other per-entry loops here): a loop over every entry runs once per
    /// step, so tiered compilation would keep it unoptimized for many steps.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public EntryScan PrepareEntries(ShardEntries shard, EntryColumns entries)
    {
        (Tensor topScores, Tensor expertIds, int rowOffset, int realTokens, _, int numExperts) = shard;
        (Tensor ids, Tensor entryScores) = entries;
        int k = topScores.RowLength,
            real = realTokens * k;
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
            if ((ulong)id >= (ulong)numExperts || !float.IsFinite(s))
                return new EntryScan(counts, i, id, s);
            outIds[i] = (int)id;
            outScores[i] = s;
            counts[id]++;
        }
        outIds.Slice(real).Clear();
        outScores.Slice(real).Clear();
        if (numExperts > 0)
            counts[0] += outIds.Length - real;
        return new EntryScan(counts, -1, 0, 0f);
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
        for (int t = 0; t < realTokens; t++)
            pos.Slice(t * topK, topK).Sort();
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void BuildPermutation(
        ReadOnlySpan<int> blockStart,
        ReadOnlySpan<int> blockDestination,
        Tensor expertMajorRowOf,
        Tensor rankMajorRowOf
    )
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
            for (int i = 0; i < n; i++)
                sorted[next[ids[i]]++] = i;
            return;
        }

        // Parallel stable counting sort: each chunk counts its ids, then writes its entries of expert e
        // after those of earlier chunks, so the result equals the serial sort.
        var chunkCounts = new int[chunks, experts];
        Parallel.For(
            0,
            chunks,
            options,
            c =>
            {
                var (start, end) = ChunkRange(n, chunks, c);
                for (int i = start; i < end; i++)
                    chunkCounts[c, idsArray[idsOffset + i]]++;
            }
        );
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
        Parallel.For(
            0,
            chunks,
            options,
            c =>
            {
                var (start, end) = ChunkRange(n, chunks, c);
                for (int i = start; i < end; i++)
                    orderArray[orderOffset + chunkNext[c, idsArray[idsOffset + i]]++] = i;
            }
        );
    }

    /// <inheritdoc />
    public void GatherRows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination) =>
        HostRowKernels.For(destination.DType).GatherRows(source, sourceRowOffset, rowOf, scale, destination);

    /// <inheritdoc />
    public void ScatterTokenRows(Tensor source, int sourceRowOffset, TokenScatter map, Tensor destination)
    {
        (Tensor rowToken, Tensor entryRow, int topK, Tensor? scale) = map;
        HostRowKernels
            .For(destination.DType)
            .ScatterTokenRows(source, sourceRowOffset, rowToken, entryRow, topK, scale, destination);
    }

    /// <inheritdoc />
    public void GatherReduce(TokenGather gather, Tensor destination, int destinationOffset)
    {
        (Tensor rows, Tensor positions, Tensor? scale, Tensor? initial) = gather;
        HostRowKernels
            .For(destination.DType)
            .GatherReduce(rows, positions, scale, initial, destination, destinationOffset);
    }

    /// <inheritdoc />
    public void RowDots(RowPairs pairs, Tensor result, int resultOffset)
    {
        (Tensor a, Tensor aRow, Tensor b, int bRowOffset, int entriesPerBRow) = pairs;
        HostRowKernels.For(a.DType).RowDots(a, aRow, b, bRowOffset, entriesPerBRow, result, resultOffset);
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

    private static (int Start, int End) ChunkRange(int n, int chunks, int c) =>
        ((int)((long)n * c / chunks), (int)((long)n * (c + 1) / chunks));
}
