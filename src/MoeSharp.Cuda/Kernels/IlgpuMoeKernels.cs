using System.Collections.Immutable;
using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Compute;
using MoeSharp.Cuda.Memory;
using MoeSharp.Tensors;
using static MoeSharp.Cuda.Kernels.DispatchKernelBodies;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// <see cref="IMoeKernels"/> as ILGPU kernels on any ILGPU accelerator (CUDA, or ILGPU's CPU accelerator for
/// tests), bitwise identical to <see cref="HostMoeKernels"/>: the same IEEE operations in the same order,
/// no fused multiply-add (see <see cref="IStrictFloat"/>), integer atomics only where the result is
/// order-independent. Kernels are compiled once per instance and launched on the accelerator's default stream;
/// the only device-to-host copy is <see cref="PrepareEntries"/>' one small read of counts, and the small index tables
/// a dispatch uploads go through the allocator's non-blocking staged copies.
/// </summary>
/// <remarks>
/// Not thread-safe: one instance per rank (its scan scratch is reused across calls). NaN inputs to the
/// float kernels give a NaN, but its payload may differ from the host's on CUDA (the GPU produces the
/// canonical NaN).
/// </remarks>
public sealed class IlgpuMoeKernels
    : IMoeKernels,
        IEntryKernels,
        IRowKernels,
        IFp8RowKernels,
        Collectives.IRankOrderedSum,
        Dispatch.ICapacityKernelSource,
        IDisposable
{
    private IlgpuCapacityKernels? _capacityKernels;
    private readonly Accelerator _accelerator;
    private readonly IlgpuTensorAllocator _allocator;
    private readonly bool _ownsAllocator;
    private MemoryBuffer1D<int, Stride1D.Dense>? _scanScratch;

    private readonly IlgpuRowKernels _float32Rows;
    private readonly IlgpuRowKernels _bfloat16Rows;
    private readonly Action<Index1D, ArrayView<int>> _initScan;
    private readonly Action<
        Index1D,
        ArrayView<int>,
        ArrayView<float>,
        int,
        int,
        int,
        ArrayView<int>,
        ArrayView<float>,
        ArrayView<int>
    > _scan32;
    private readonly Action<
        Index1D,
        ArrayView<long>,
        ArrayView<float>,
        int,
        int,
        int,
        ArrayView<int>,
        ArrayView<float>,
        ArrayView<int>
    > _scan64;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<float>, int, ArrayView<int>> _fetch32;
    private readonly Action<Index1D, ArrayView<int>, int, int, int, int, int, int, int, ArrayView<int>> _packCounts;
    private readonly Action<Index1D, ArrayView<long>, ArrayView<float>, int, ArrayView<int>> _fetch64;
    private readonly Action<Index1D, ArrayView<int>, int, int, ArrayView<int>> _columnScan;
    private readonly Action<KernelConfig, ArrayView<int>, int, int, ArrayView<int>, ArrayView<int>> _chunkRanks;
    private readonly Action<
        Index1D,
        ArrayView<int>,
        ArrayView<int>,
        int,
        int,
        ArrayView<int>,
        ArrayView<int>
    > _placeRanked;
    private readonly int _rankChunk;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<float>> _clearRows;
    private readonly Action<
        Index1D,
        ArrayView<int>,
        ArrayView<float>,
        ArrayView<int>,
        int,
        int,
        int,
        ArrayView<int>,
        ArrayView<float>,
        ArrayView<int>
    > _scatterLayout;
    private readonly Action<Index1D, ArrayView<int>, int, ArrayView<int>> _sortPositions;
    private readonly Action<Index1D, ArrayView<int>, int, ArrayView<int>, ArrayView<int>> _mapBlocks;

    /// <summary>Creates the kernels on <paramref name="accelerator"/>, with their own caching allocator.</summary>
    /// <param name="accelerator">Where tensors live and kernels run; the caller keeps ownership.</param>
    /// <param name="deviceName">Device name of the tensors, e.g. <c>cuda:0</c>; derived from the accelerator when
    /// null.</param>
    public IlgpuMoeKernels(Accelerator accelerator, string? deviceName = null)
        : this(
            accelerator,
            new IlgpuTensorAllocator(accelerator, deviceName ?? DefaultDeviceName(accelerator)),
            ownsAllocator: true
        ) { }

    /// <summary>
    /// Creates the kernels on <paramref name="allocator"/>'s accelerator, renting from it (the caller keeps ownership
    /// of it).
    /// </summary>
    public IlgpuMoeKernels(IlgpuTensorAllocator allocator)
        : this(allocator?.Accelerator!, allocator!, ownsAllocator: false) { }

    private IlgpuMoeKernels(Accelerator accelerator, IlgpuTensorAllocator allocator, bool ownsAllocator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        ArgumentNullException.ThrowIfNull(allocator);
        _accelerator = accelerator;
        _allocator = allocator;
        _ownsAllocator = ownsAllocator;
        Device = new IlgpuComputeDevice(allocator);
        _float32Rows = new IlgpuRowKernels<float, Float32DeviceRow>(
            accelerator,
            DType.Float32,
            Buffer,
            tiledGather: false,
            packedReduce: false,
            // Float32 rows of whole tiles: four values a thread, each slot's position and score read once for them (one
            // value a thread read every position and score per value: the qwen3 combine took 0.61 ms for 1.07 GB).
            tiledReduce: true
        );
        _bfloat16Rows = new IlgpuRowKernels<ushort, BFloat16DeviceRow>(
            accelerator,
            DType.BFloat16,
            Buffer,
            tiledGather: true,
            packedReduce: true
        );
        _initScan = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>>(InitScan);
        _scan32 = accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<int>,
            ArrayView<float>,
            int,
            int,
            int,
            ArrayView<int>,
            ArrayView<float>,
            ArrayView<int>
        >(ScanEntries32);
        _scan64 = accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<long>,
            ArrayView<float>,
            int,
            int,
            int,
            ArrayView<int>,
            ArrayView<float>,
            ArrayView<int>
        >(ScanEntries64);
        _fetch32 = accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<int>,
            ArrayView<float>,
            int,
            ArrayView<int>
        >(FetchInvalid32);
        _packCounts = accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<int>,
            int,
            int,
            int,
            int,
            int,
            int,
            int,
            ArrayView<int>
        >(DispatchKernelBodies.PackCountMessages);
        _fetch64 = accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<long>,
            ArrayView<float>,
            int,
            ArrayView<int>
        >(FetchInvalid64);
        _columnScan = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, int, ArrayView<int>>(
            ColumnScan
        );
        _chunkRanks = accelerator.LoadStreamKernel<ArrayView<int>, int, int, ArrayView<int>, ArrayView<int>>(
            ChunkRanks
        );
        _placeRanked = accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<int>,
            ArrayView<int>,
            int,
            int,
            ArrayView<int>,
            ArrayView<int>
        >(PlaceRanked);
        _rankChunk = Math.Min(MaxRankChunk, accelerator.MaxNumThreadsPerGroup);
        _mapBlocks = accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<int>,
            int,
            ArrayView<int>,
            ArrayView<int>
        >(MapBlocks);
        _clearRows = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>>(ClearRows);
        _scatterLayout = accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<int>,
            ArrayView<float>,
            ArrayView<int>,
            int,
            int,
            int,
            ArrayView<int>,
            ArrayView<float>,
            ArrayView<int>
        >(ScatterLayout);
        _sortPositions = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, ArrayView<int>>(
            SortPositions
        );
    }

    /// <summary>The accelerator the kernels run on.</summary>
    public Accelerator Accelerator => _accelerator;

    /// <summary>The caching device allocator behind the device's allocator.</summary>
    public IlgpuTensorAllocator DeviceAllocator => _allocator;

    /// <inheritdoc cref="IMoeKernels.Device" />
    public IlgpuComputeDevice Device { get; }

    IComputeDevice IMoeKernels.Device => Device;

    /// <inheritdoc />
    public IEntryKernels Entries => this;

    /// <summary>Capacity mode's kernels on this accelerator, compiled on first use.</summary>
    Dispatch.ICapacityKernels Dispatch.ICapacityKernelSource.CapacityKernels =>
        _capacityKernels ??= new IlgpuCapacityKernels(_allocator);

    /// <inheritdoc />
    public IRowKernels Rows => this;

    /// <inheritdoc />
    /// <remarks>For FP8 dispatch (<see cref="Dispatch.RowWireFormat.Fp8E4M3"/>):
    /// <see cref="IlgpuFp8RowKernels"/>.</remarks>
    public void QuantizeRows(Tensor rows, Tensor wire) => Fp8.QuantizeRows(rows, wire);

    /// <inheritdoc />
    public void DequantizeRows(Tensor wire, Tensor rows) => Fp8.DequantizeRows(wire, rows);

    /// <summary>The FP8 wire-row kernels, compiled on first use.</summary>
    private IlgpuFp8RowKernels Fp8 => _fp8 ??= new IlgpuFp8RowKernels(_accelerator);

    private IlgpuFp8RowKernels? _fp8;

    /// <summary>
    /// Name of a device: <c>cuda:N</c> for CUDA (N the accelerator's device id when known), else <c>ilgpu-cpu</c>-style
    /// names.
    /// </summary>
    public static string DefaultDeviceName(Accelerator accelerator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        return accelerator.AcceleratorType == AcceleratorType.Cuda
            ? "cuda"
            : "ilgpu-" + accelerator.AcceleratorType.ToString().ToLowerInvariant();
    }

    /// <inheritdoc />
    public void Clear(Tensor tensor)
    {
        if (tensor.ByteCount == 0)
            return;
        Buffer(tensor, nameof(tensor)).Bytes.SubView(0, tensor.ByteCount).MemSetToZero(_accelerator.DefaultStream);
    }

    /// <inheritdoc />
    public void CopyRows(Tensor source, int sourceRow, Tensor destination, int destinationRow, int rows)
    {
        long rowBytes = (long)source.RowLength * source.DType.SizeOf();
        if (rows <= 0 || rowBytes == 0)
            return;
        ArrayView<byte> from = Buffer(source, nameof(source)).Bytes.SubView(sourceRow * rowBytes, rows * rowBytes);
        ArrayView<byte> to = Buffer(destination, nameof(destination))
            .Bytes.SubView(destinationRow * rowBytes, rows * rowBytes);
        from.CopyTo(_accelerator.DefaultStream, to);
    }

    /// <inheritdoc />
    public EntryScan PrepareEntries(ShardEntries shard, EntryColumns entries)
    {
        (Tensor topScores, Tensor expertIds, int rowOffset, int realTokens, _, int numExperts) = shard;
        (Tensor ids, Tensor entryScores) = entries;
        ArrayView<int> scratch = ScanScratch(EntryScanWords.Length(numExperts));
        RunScan(topScores, expertIds, rowOffset, realTokens, numExperts, ids, entryScores, scratch);
        // The one device-to-host copy of a dispatch: header and counts together.
        var host = new int[scratch.IntLength];
        _allocator.HostWaits.BeforeBlockingCall("read of the routing counts");
        scratch.CopyToCPU(_accelerator.DefaultStream, host.AsSpan());
        _accelerator.DefaultStream.Synchronize();
        return EntryScanWords.Decode(host, numExperts, ids.ElementCount - realTokens * topScores.RowLength);
    }

    /// <inheritdoc />
    public void ScanEntries(ShardEntries shard, EntryColumns entries, Tensor scan, int scanOffset)
    {
        (Tensor topScores, Tensor expertIds, int rowOffset, int realTokens, _, int numExperts) = shard;
        (Tensor ids, Tensor entryScores) = entries;
        int length = EntryScanWords.Length(numExperts);
        ArrayView<int> words = Ints(scan, nameof(scan));
        if (scanOffset < 0 || scanOffset + (long)length > words.Length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(scanOffset),
                scanOffset,
                $"a scan of {length} words does not fit {scan} there"
            );
        }
        RunScan(
            topScores,
            expertIds,
            rowOffset,
            realTokens,
            numExperts,
            ids,
            entryScores,
            words.SubView(scanOffset, length)
        );
    }

    /// <inheritdoc />
    /// <remarks>This backend carries at most four header values (kernel arguments).</remarks>
    public void PackCountMessages(Tensor scan, int scanOffset, CountMessages messages, Tensor send)
    {
        (int ranks, int expertsPerRank, int padEntries, ImmutableArray<int> headerValues) = messages;
        ReadOnlySpan<int> header = headerValues.AsSpan();
        if (header.Length > 4)
            throw new ArgumentException($"{header.Length} header values; this backend packs at most 4", nameof(header));
        int length = expertsPerRank + header.Length + 1;
        ArrayView<int> sent = Ints(send, nameof(send));
        if ((long)ranks * length > sent.Length)
            throw new ArgumentException($"{ranks} messages of {length} values do not fit {send}", nameof(send));
        Span<int> h = stackalloc int[4];
        header.CopyTo(h);
        if (ranks == 0)
            return;
        _packCounts(
            ranks * length,
            Ints(scan, nameof(scan)).SubView(scanOffset, EntryScanWords.Length(ranks * expertsPerRank)),
            expertsPerRank,
            header.Length,
            padEntries,
            h[0],
            h[1],
            h[2],
            h[3],
            sent
        );
    }

    /// <inheritdoc />
    public Tensor RentGathered(DType dtype, int elements) => _allocator.Rent(dtype, elements);

    /// <inheritdoc />
    public void SumInRankOrder(Tensor gathered, int ranks, Tensor values)
    {
        int n = values.ElementCount;
        if (gathered.DType != values.DType || (long)ranks * n > gathered.ElementCount)
        {
            throw new ArgumentException(
                $"gathered {gathered} does not hold {ranks} copies of {values}",
                nameof(gathered)
            );
        }
        RowKernelsOf(values, nameof(values)).SumInRankOrder(gathered, ranks, values);
    }

    /// <inheritdoc />
    public void ReturnGathered(Tensor gathered) => _allocator.Return(gathered);

    /// <summary>
    /// Validates, converts and counts the shard's entries into <paramref name="scratch"/> (the <see
    /// cref="EntryScanWords"/> layout).
    /// </summary>
    private void RunScan(
        Tensor topScores,
        Tensor expertIds,
        int rowOffset,
        int realTokens,
        int numExperts,
        Tensor ids,
        Tensor entryScores,
        ArrayView<int> scratch
    )
    {
        int k = topScores.RowLength,
            real = realTokens * k,
            n = ids.ElementCount;
        ArrayView<float> scores = Floats(topScores, nameof(topScores));
        ArrayView<int> outIds = Ints(ids, nameof(ids));
        ArrayView<float> outScores = Floats(entryScores, nameof(entryScores));
        int offset = rowOffset * k;
        _initScan(scratch.IntExtent, scratch);
        if (expertIds.DType == DType.Int64)
        {
            ArrayView<long> idsIn = Longs(expertIds, nameof(expertIds));
            if (n > 0)
                _scan64(n, idsIn, scores, offset, real, numExperts, outIds, outScores, scratch);
            _fetch64(1, idsIn, scores, offset, scratch);
        }
        else
        {
            ArrayView<int> idsIn = Ints(expertIds, nameof(expertIds));
            if (n > 0)
                _scan32(n, idsIn, scores, offset, real, numExperts, outIds, outScores, scratch);
            _fetch32(1, idsIn, scores, offset, scratch);
        }
    }

    /// <inheritdoc />
    public void StableSortByExpert(Tensor expertIds, ReadOnlySpan<int> counts, Tensor order)
    {
        int n = expertIds.ElementCount,
            experts = counts.Length;
        if (n == 0)
            return;
        ArrayView<int> ids = Ints(expertIds, nameof(expertIds));
        ArrayView<int> sorted = Ints(order, nameof(order));
        var starts = new int[experts];
        int running = 0;
        for (int e = 0; e < experts; e++)
        {
            starts[e] = running;
            running += counts[e];
        }
        Tensor expertStart = _allocator.Upload(Tensor.FromArray(starts, experts));
        // Chunks of a group's size: each group ranks its entries among equal ids in shared memory (no serial loop over
        // a chunk), then a scan per expert over the chunks gives every (chunk, expert) its first sorted position.
        int chunk = _rankChunk,
            chunks = (int)((n + (long)chunk - 1) / chunk);
        Tensor table = _allocator.Rent(DType.Int32, chunks * experts);
        Tensor rank = _allocator.Rent(DType.Int32, n);
        try
        {
            ArrayView<int> tableView = Ints(table, nameof(table)),
                rankView = Ints(rank, nameof(rank));
            tableView.MemSetToZero(_accelerator.DefaultStream);
            _chunkRanks(new KernelConfig(chunks, chunk), ids, n, experts, tableView, rankView);
            _columnScan(experts, tableView, chunks, experts, Ints(expertStart, nameof(expertStart)));
            _placeRanked(n, ids, rankView, chunk, experts, tableView, sorted);
            // No wait: the scratch goes back to the pool at once, and whoever rents it next queues after these kernels
            // (every user of this allocator's memory is ordered on the default stream, or after it by an event).
        }
        finally
        {
            _allocator.Return(rank);
            _allocator.Return(table);
            _allocator.Return(expertStart);
        }
    }

    /// <inheritdoc />
    /// <remarks>One small upload (the S·e block runs); the row maps are written by a kernel.</remarks>
    public void BuildPermutation(
        ReadOnlySpan<int> blockStart,
        ReadOnlySpan<int> blockDestination,
        Tensor expertMajorRowOf,
        Tensor rankMajorRowOf
    )
    {
        int blocks = blockDestination.Length,
            received = rankMajorRowOf.ElementCount;
        ArrayView<int> toReceived = Ints(expertMajorRowOf, nameof(expertMajorRowOf));
        ArrayView<int> toRouted = Ints(rankMajorRowOf, nameof(rankMajorRowOf));
        // Rows no block covers (alignment padding) read -1: all bytes 0xFF.
        if (expertMajorRowOf.ElementCount > received)
            Buffer(expertMajorRowOf, nameof(expertMajorRowOf))
                .Bytes.SubView(0, expertMajorRowOf.ByteCount)
                .MemSet(_accelerator.DefaultStream, 0xFF);
        if (received == 0 || blocks == 0)
            return;
        var runs = new int[2 * blocks + 1];
        blockStart.CopyTo(runs);
        blockDestination.CopyTo(runs.AsSpan(blocks + 1));
        Tensor table = _allocator.Upload(Tensor.FromArray(runs, runs.Length));
        try
        {
            _mapBlocks(received, Ints(table, nameof(table)), blocks, toReceived, toRouted);
        }
        finally
        {
            // Stream-ordered reuse, as in StableSortByExpert.
            _allocator.Return(table);
        }
    }

    /// <inheritdoc />
    public void BuildLocalLayout(SortedEntries sortedEntries, LocalLayoutMaps maps)
    {
        (Tensor order, Tensor entryScores, int realTokens, int topK, Tensor? rowOfSorted) = sortedEntries;
        (Tensor rowToken, Tensor rowScore, Tensor entryRow, Tensor tokenPositions) = maps;
        ArrayView<int> sorted = Ints(order, nameof(order));
        ArrayView<int> token = Ints(rowToken, nameof(rowToken));
        ArrayView<float> score = Floats(rowScore, nameof(rowScore));
        ArrayView<int> rowOfEntry = Ints(entryRow, nameof(entryRow));
        ArrayView<int> positions = Ints(tokenPositions, nameof(tokenPositions));
        if (rowOfSorted is not null && rowToken.ElementCount > 0)
            _clearRows(rowToken.ElementCount, token, score);
        int n = order.ElementCount;
        if (n > 0)
        {
            ArrayView<int> map = rowOfSorted is null ? sorted : Ints(rowOfSorted, nameof(rowOfSorted));
            _scatterLayout(
                n,
                sorted,
                Floats(entryScores, nameof(entryScores)),
                map,
                rowOfSorted is null ? 0 : 1,
                realTokens * topK,
                topK,
                token,
                score,
                rowOfEntry
            );
        }
        if (realTokens > 0 && topK > 0)
            _sortPositions(realTokens, rowOfEntry, topK, positions);
    }

    /// <inheritdoc />
    public void GatherRows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination) =>
        RowKernelsOf(destination, nameof(destination)).GatherRows(source, sourceRowOffset, rowOf, scale, destination);

    /// <inheritdoc />
    /// <remarks>
    /// Rows of a multiple of 128 words (128 float32 or 256 bfloat16 values) go token by token, each token row read once
    /// (<see cref="TokenScatterKernelBodies"/>); other widths are computed as the gather.
    /// </remarks>
    public void ScatterTokenRows(Tensor source, int sourceRowOffset, TokenScatter map, Tensor destination)
    {
        (Tensor rowToken, Tensor entryRow, int topK, Tensor? scale) = map;
        RowKernelsOf(destination, nameof(destination))
            .ScatterTokenRows(source, sourceRowOffset, rowToken, entryRow, topK, scale, destination);
    }

    /// <inheritdoc />
    public void GatherReduce(TokenGather gather, Tensor destination, int destinationOffset)
    {
        (Tensor rows, Tensor positions, Tensor? scale, Tensor? initial) = gather;
        RowKernelsOf(destination, nameof(destination))
            .GatherReduce(rows, positions, scale, initial, destination, destinationOffset);
    }

    /// <inheritdoc />
    public void RowDots(RowPairs pairs, Tensor result, int resultOffset)
    {
        (Tensor a, Tensor aRow, Tensor b, int bRowOffset, int entriesPerBRow) = pairs;
        RowKernelsOf(a, nameof(a)).RowDots(a, aRow, b, bRowOffset, entriesPerBRow, result, resultOffset);
    }

    /// <summary>
    /// The row kernels for the rows of <paramref name="tensor"/>: the one place a row type is chosen.
    /// </summary>
    private IlgpuRowKernels RowKernelsOf(Tensor tensor, string name) =>
        tensor.DType switch
        {
            DType.Float32 => _float32Rows,
            DType.BFloat16 => _bfloat16Rows,
            _ => throw new ArgumentException($"{name} must be float32 or bfloat16; got {tensor}", name),
        };

    /// <summary>Frees the scratch memory, and the allocator when this instance created it.</summary>
    public void Dispose()
    {
        _scanScratch?.Dispose();
        _scanScratch = null;
        if (_ownsAllocator)
            _allocator.Dispose();
    }

    private ArrayView<int> ScanScratch(int length)
    {
        if (_scanScratch is null || _scanScratch.Length < length)
        {
            _scanScratch?.Dispose();
            _scanScratch = _accelerator.Allocate1D<int>(Math.Max(length, 64));
        }
        return _scanScratch.View.SubView(0, length);
    }

    /// <summary>The ILGPU buffer of a device tensor of this accelerator; a clear error for anything else.</summary>
    private IlgpuDeviceBuffer Buffer(Tensor tensor, string name)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        if (tensor.DeviceBuffer is IlgpuDeviceBuffer buffer && buffer.Accelerator == _accelerator)
            return buffer;
        throw new ArgumentException(
            $"{name} ({tensor}) lives on {tensor.Device}, not on this backend's {Device.Name}: copy it with ToDevice",
            name
        );
    }

    private ArrayView<float> Floats(Tensor t, string name) => Typed<float>(t, DType.Float32, name);

    private ArrayView<int> Ints(Tensor t, string name) => Typed<int>(t, DType.Int32, name);

    private ArrayView<long> Longs(Tensor t, string name) => Typed<long>(t, DType.Int64, name);

    private ArrayView<T> Typed<T>(Tensor t, DType dtype, string name)
        where T : unmanaged
    {
        IlgpuDeviceBuffer buffer = Buffer(t, name);
        if (t.DType != dtype)
            throw new ArgumentException($"{name} must be {dtype}; got {t}", name);
        return buffer.View<T>(t.ElementCount);
    }
}
