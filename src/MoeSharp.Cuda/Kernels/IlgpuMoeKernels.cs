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
public sealed class IlgpuMoeKernels : IMoeKernels, IEntryKernels, IRowKernels, Collectives.IRankOrderedSum, IDisposable
{
    private readonly Accelerator _accelerator;
    private readonly IlgpuTensorAllocator _allocator;
    private readonly bool _ownsAllocator;
    private MemoryBuffer1D<int, Stride1D.Dense>? _scanScratch;

    private readonly Action<Index1D, ArrayView<int>> _initScan;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<float>, int, int, int, ArrayView<int>, ArrayView<float>, ArrayView<int>> _scan32;
    private readonly Action<Index1D, ArrayView<long>, ArrayView<float>, int, int, int, ArrayView<int>, ArrayView<float>, ArrayView<int>> _scan64;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<float>, int, ArrayView<int>> _fetch32;
    private readonly Action<Index1D, ArrayView<int>, int, int, int, int, int, int, int, ArrayView<int>> _packCounts;
    private readonly Action<Index1D, ArrayView<float>, int, int, ArrayView<float>> _sumRanks32;
    private readonly Action<Index1D, ArrayView<ushort>, int, int, ArrayView<ushort>> _sumRanksBf16;
    private readonly Action<Index1D, ArrayView<long>, ArrayView<float>, int, ArrayView<int>> _fetch64;
    private readonly Action<Index1D, ArrayView<int>, int, int, ArrayView<int>> _columnScan;
    private readonly Action<KernelConfig, ArrayView<int>, int, int, ArrayView<int>, ArrayView<int>> _chunkRanks;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int, ArrayView<int>, ArrayView<int>> _placeRanked;
    private readonly int _rankChunk;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<float>> _clearRows;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, ArrayView<int>, ArrayView<float>, ArrayView<int>> _scatterLayout;
    private readonly Action<Index1D, ArrayView<int>, int, ArrayView<int>> _sortPositions;
    private readonly Action<Index1D, ArrayView<int>, int, ArrayView<int>, ArrayView<int>> _mapBlocks;
    private readonly Action<Index1D, ArrayView<float>, int, ArrayView<int>, ArrayView<float>, int, int, ArrayView<float>> _gatherRows;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>, int, ArrayView<float>, int, int, ArrayView<float>, int> _gatherReduce;
    private readonly Action<Index1D, ArrayView<Float4>, int, ArrayView<int>, ArrayView<float>, int, int, ArrayView<Float4>> _gatherRows4;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, ArrayView<float>, int> _rowDots;
    private readonly Action<Index1D, ArrayView<UInt4>, int, ArrayView<int>, ArrayView<float>, int, int, ArrayView<UInt4>> _gatherBf16x8;
    private readonly Action<Index1D, ArrayView<ushort>, int, ArrayView<int>, ArrayView<float>, int, int, ArrayView<ushort>> _gatherBf16;
    private readonly Action<Index1D, ArrayView<uint>, int, ArrayView<int>, ArrayView<float>, int, int, ArrayView<uint>> _gatherBf16Tiled;
    private readonly Action<Index1D, ArrayView<uint>, int, ArrayView<int>, int, ArrayView<float>, int, int, int, ArrayView<uint>> _scatterTokensTiled;
    private readonly Action<Index1D, ArrayView<int>, int, ArrayView<uint>> _clearTokenlessRowsTiled;
    private readonly Action<Index1D, ArrayView<uint>, ArrayView<int>, int, ArrayView<float>, int, ArrayView<uint>, int, int, ArrayView<uint>, int> _gatherReduceBf16Tiled;
    private readonly Action<Index1D, ArrayView<UInt4>, ArrayView<int>, int, ArrayView<float>, int, ArrayView<UInt4>, int, int, ArrayView<UInt4>, int> _gatherReduceBf16x8;
    private readonly Action<Index1D, ArrayView<ushort>, ArrayView<int>, int, ArrayView<float>, int, ArrayView<ushort>, int, int, ArrayView<ushort>, int> _gatherReduceBf16;
    private readonly Action<Index1D, ArrayView<ushort>, ArrayView<int>, ArrayView<ushort>, int, int, int, ArrayView<float>, int> _rowDotsBf16;

    /// <summary>Creates the kernels on <paramref name="accelerator"/>, with their own caching allocator.</summary>
    /// <param name="accelerator">Where tensors live and kernels run; the caller keeps ownership.</param>
    /// <param name="deviceName">Device name of the tensors, e.g. <c>cuda:0</c>; derived from the accelerator when null.</param>
    public IlgpuMoeKernels(Accelerator accelerator, string? deviceName = null)
        : this(accelerator, new IlgpuTensorAllocator(accelerator, deviceName ?? DefaultDeviceName(accelerator)), ownsAllocator: true)
    {
    }

    /// <summary>Creates the kernels on <paramref name="allocator"/>'s accelerator, renting from it (the caller keeps ownership of it).</summary>
    public IlgpuMoeKernels(IlgpuTensorAllocator allocator) : this(allocator?.Accelerator!, allocator!, ownsAllocator: false)
    {
    }

    private IlgpuMoeKernels(Accelerator accelerator, IlgpuTensorAllocator allocator, bool ownsAllocator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        ArgumentNullException.ThrowIfNull(allocator);
        _accelerator = accelerator;
        _allocator = allocator;
        _ownsAllocator = ownsAllocator;
        Device = new IlgpuComputeDevice(allocator);
        // CUDA gets float64 products that ptxas cannot contract; every other accelerator runs .NET operators (see StrictFloat).
        bool cuda = accelerator.AcceleratorType == AcceleratorType.Cuda;
        _initScan = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>>(InitScan);
        _scan32 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>, int, int, int, ArrayView<int>, ArrayView<float>, ArrayView<int>>(ScanEntries32);
        _scan64 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<float>, int, int, int, ArrayView<int>, ArrayView<float>, ArrayView<int>>(ScanEntries64);
        _fetch32 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>, int, ArrayView<int>>(FetchInvalid32);
        _packCounts = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, int, int, int, int, int, int, ArrayView<int>>(DispatchKernelBodies.PackCountMessages);
        _sumRanks32 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, int, ArrayView<float>>(DispatchKernelBodies.SumRanks32);
        _sumRanksBf16 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, int, int, ArrayView<ushort>>(DispatchKernelBodies.SumRanksBFloat16);
        _fetch64 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<float>, int, ArrayView<int>>(FetchInvalid64);
        _columnScan = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, int, ArrayView<int>>(ColumnScan);
        _chunkRanks = accelerator.LoadStreamKernel<ArrayView<int>, int, int, ArrayView<int>, ArrayView<int>>(ChunkRanks);
        _placeRanked = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>, int, int, ArrayView<int>, ArrayView<int>>(PlaceRanked);
        _rankChunk = Math.Min(MaxRankChunk, accelerator.MaxNumThreadsPerGroup);
        _mapBlocks = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, ArrayView<int>, ArrayView<int>>(MapBlocks);
        _clearRows = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>>(ClearRows);
        _scatterLayout = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, ArrayView<int>, ArrayView<float>, ArrayView<int>>(ScatterLayout);
        _sortPositions = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, ArrayView<int>>(SortPositions);
        _gatherRows = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ArrayView<int>, ArrayView<float>, int, int, ArrayView<float>>(cuda ? DispatchKernelBodies.GatherRows<CudaStrictFloat> : DispatchKernelBodies.GatherRows<ManagedStrictFloat>);
        _gatherReduce = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>, int, ArrayView<float>, int, int, ArrayView<float>, int>(cuda ? DispatchKernelBodies.GatherReduce<CudaStrictFloat> : DispatchKernelBodies.GatherReduce<ManagedStrictFloat>);
        _gatherRows4 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<Float4>, int, ArrayView<int>, ArrayView<float>, int, int, ArrayView<Float4>>(cuda ? DispatchKernelBodies.GatherRows4<CudaStrictFloat> : DispatchKernelBodies.GatherRows4<ManagedStrictFloat>);
        _rowDots = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, ArrayView<float>, int>(DispatchKernelBodies.RowDots);
        _gatherBf16x8 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<UInt4>, int, ArrayView<int>, ArrayView<float>, int, int, ArrayView<UInt4>>(
            cuda ? BFloat16KernelBodies.GatherRows8<CudaStrictFloat> : BFloat16KernelBodies.GatherRows8<ManagedStrictFloat>);
        _gatherBf16 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, int, ArrayView<int>, ArrayView<float>, int, int, ArrayView<ushort>>(
            cuda ? BFloat16KernelBodies.GatherRows1<CudaStrictFloat> : BFloat16KernelBodies.GatherRows1<ManagedStrictFloat>);
        _gatherReduceBf16x8 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<UInt4>, ArrayView<int>, int, ArrayView<float>, int, ArrayView<UInt4>, int, int, ArrayView<UInt4>, int>(
            cuda ? BFloat16KernelBodies.GatherReduce8<CudaStrictFloat> : BFloat16KernelBodies.GatherReduce8<ManagedStrictFloat>);
        _gatherBf16Tiled = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<uint>, int, ArrayView<int>, ArrayView<float>, int, int, ArrayView<uint>>(
            cuda ? BFloat16KernelBodies.GatherRowsTiled<CudaStrictFloat> : BFloat16KernelBodies.GatherRowsTiled<ManagedStrictFloat>);
        _gatherReduceBf16Tiled = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<uint>, ArrayView<int>, int, ArrayView<float>, int, ArrayView<uint>, int, int, ArrayView<uint>, int>(
            cuda ? BFloat16KernelBodies.GatherReduceTiled<CudaStrictFloat> : BFloat16KernelBodies.GatherReduceTiled<ManagedStrictFloat>);
        _scatterTokensTiled = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<uint>, int, ArrayView<int>, int, ArrayView<float>, int, int, int, ArrayView<uint>>(
            cuda ? TokenScatterKernelBodies.ScatterTokensTiled<CudaStrictFloat> : TokenScatterKernelBodies.ScatterTokensTiled<ManagedStrictFloat>);
        _clearTokenlessRowsTiled = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, ArrayView<uint>>(TokenScatterKernelBodies.ClearTokenlessRowsTiled);
        _gatherReduceBf16 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<int>, int, ArrayView<float>, int, ArrayView<ushort>, int, int, ArrayView<ushort>, int>(
            cuda ? BFloat16KernelBodies.GatherReduce1<CudaStrictFloat> : BFloat16KernelBodies.GatherReduce1<ManagedStrictFloat>);
        _rowDotsBf16 = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<int>, ArrayView<ushort>, int, int, int, ArrayView<float>, int>(BFloat16KernelBodies.RowDots);
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

    /// <inheritdoc />
    public IRowKernels Rows => this;

    /// <inheritdoc />
    public void GatherReduce(TokenGather gather, Tensor destination, int destinationOffset)
        => GatherReduceCore(gather.Rows, gather.Positions, gather.Scale, gather.Initial, destination, destinationOffset);

    /// <inheritdoc />
    public void RowDots(RowPairs pairs, Tensor result, int resultOffset)
        => RowDotsCore(pairs.A, pairs.ARow, pairs.B, pairs.BRowOffset, pairs.EntriesPerBRow, result, resultOffset);

    /// <summary>Name of a device: <c>cuda:N</c> for CUDA (N the accelerator's device id when known), else <c>ilgpu-cpu</c>-style names.</summary>
    public static string DefaultDeviceName(Accelerator accelerator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        return accelerator.AcceleratorType == AcceleratorType.Cuda ? "cuda" : "ilgpu-" + accelerator.AcceleratorType.ToString().ToLowerInvariant();
    }

    /// <inheritdoc />
    public void Clear(Tensor tensor)
    {
        if (tensor.ByteCount == 0) return;
        Buffer(tensor, nameof(tensor)).Bytes.SubView(0, tensor.ByteCount).MemSetToZero(_accelerator.DefaultStream);
    }

    /// <inheritdoc />
    public void CopyRows(Tensor source, int sourceRow, Tensor destination, int destinationRow, int rows)
    {
        long rowBytes = (long)source.RowLength * source.DType.SizeOf();
        if (rows <= 0 || rowBytes == 0) return;
        ArrayView<byte> from = Buffer(source, nameof(source)).Bytes.SubView(sourceRow * rowBytes, rows * rowBytes);
        ArrayView<byte> to = Buffer(destination, nameof(destination)).Bytes.SubView(destinationRow * rowBytes, rows * rowBytes);
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
            throw new ArgumentOutOfRangeException(nameof(scanOffset), scanOffset, $"a scan of {length} words does not fit {scan} there");
        }
        RunScan(topScores, expertIds, rowOffset, realTokens, numExperts, ids, entryScores, words.SubView(scanOffset, length));
    }

    /// <inheritdoc />
    /// <remarks>This backend carries at most four header values (kernel arguments).</remarks>
    public void PackCountMessages(Tensor scan, int scanOffset, CountMessages messages, Tensor send)
    {
        (int ranks, int expertsPerRank, int padEntries, ImmutableArray<int> headerValues) = messages;
        ReadOnlySpan<int> header = headerValues.AsSpan();
        if (header.Length > 4) throw new ArgumentException($"{header.Length} header values; this backend packs at most 4", nameof(header));
        int length = expertsPerRank + header.Length + 1;
        ArrayView<int> sent = Ints(send, nameof(send));
        if ((long)ranks * length > sent.Length) throw new ArgumentException($"{ranks} messages of {length} values do not fit {send}", nameof(send));
        Span<int> h = stackalloc int[4];
        header.CopyTo(h);
        if (ranks == 0) return;
        _packCounts(ranks * length, Ints(scan, nameof(scan)).SubView(scanOffset, EntryScanWords.Length(ranks * expertsPerRank)), expertsPerRank,
            header.Length, padEntries, h[0], h[1], h[2], h[3], sent);
    }

    /// <inheritdoc />
    public Tensor RentGathered(DType dtype, int elements) => _allocator.Rent(dtype, elements);

    /// <inheritdoc />
    public void SumInRankOrder(Tensor gathered, int ranks, Tensor values)
    {
        int n = values.ElementCount;
        if (gathered.DType != values.DType || (long)ranks * n > gathered.ElementCount)
        {
            throw new ArgumentException($"gathered {gathered} does not hold {ranks} copies of {values}", nameof(gathered));
        }
        if (n == 0) return;
        if (values.DType == DType.BFloat16) _sumRanksBf16(n, Halves(gathered, nameof(gathered)), n, ranks, Halves(values, nameof(values)));
        else _sumRanks32(n, Floats(gathered, nameof(gathered)), n, ranks, Floats(values, nameof(values)));
    }

    /// <inheritdoc />
    public void ReturnGathered(Tensor gathered) => _allocator.Return(gathered);

    /// <summary>Validates, converts and counts the shard's entries into <paramref name="scratch"/> (the <see cref="EntryScanWords"/> layout).</summary>
    private void RunScan(Tensor topScores, Tensor expertIds, int rowOffset, int realTokens, int numExperts, Tensor ids, Tensor entryScores, ArrayView<int> scratch)
    {
        int k = topScores.RowLength, real = realTokens * k, n = ids.ElementCount;
        ArrayView<float> scores = Floats(topScores, nameof(topScores));
        ArrayView<int> outIds = Ints(ids, nameof(ids));
        ArrayView<float> outScores = Floats(entryScores, nameof(entryScores));
        int offset = rowOffset * k;
        _initScan(scratch.IntExtent, scratch);
        if (expertIds.DType == DType.Int64)
        {
            ArrayView<long> idsIn = Longs(expertIds, nameof(expertIds));
            if (n > 0) _scan64(n, idsIn, scores, offset, real, numExperts, outIds, outScores, scratch);
            _fetch64(1, idsIn, scores, offset, scratch);
        }
        else
        {
            ArrayView<int> idsIn = Ints(expertIds, nameof(expertIds));
            if (n > 0) _scan32(n, idsIn, scores, offset, real, numExperts, outIds, outScores, scratch);
            _fetch32(1, idsIn, scores, offset, scratch);
        }
    }

    /// <inheritdoc />
    public void StableSortByExpert(Tensor expertIds, ReadOnlySpan<int> counts, Tensor order)
    {
        int n = expertIds.ElementCount, experts = counts.Length;
        if (n == 0) return;
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
        int chunk = _rankChunk, chunks = (int)((n + (long)chunk - 1) / chunk);
        Tensor table = _allocator.Rent(DType.Int32, chunks * experts);
        Tensor rank = _allocator.Rent(DType.Int32, n);
        try
        {
            ArrayView<int> tableView = Ints(table, nameof(table)), rankView = Ints(rank, nameof(rank));
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
    public void BuildPermutation(ReadOnlySpan<int> blockStart, ReadOnlySpan<int> blockDestination, Tensor expertMajorRowOf, Tensor rankMajorRowOf)
    {
        int blocks = blockDestination.Length, received = rankMajorRowOf.ElementCount;
        ArrayView<int> toReceived = Ints(expertMajorRowOf, nameof(expertMajorRowOf));
        ArrayView<int> toRouted = Ints(rankMajorRowOf, nameof(rankMajorRowOf));
        // Rows no block covers (alignment padding) read -1: all bytes 0xFF.
        if (expertMajorRowOf.ElementCount > received) Buffer(expertMajorRowOf, nameof(expertMajorRowOf)).Bytes.SubView(0, expertMajorRowOf.ByteCount)
            .MemSet(_accelerator.DefaultStream, 0xFF);
        if (received == 0 || blocks == 0) return;
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
        if (rowOfSorted is not null && rowToken.ElementCount > 0) _clearRows(rowToken.ElementCount, token, score);
        int n = order.ElementCount;
        if (n > 0)
        {
            ArrayView<int> map = rowOfSorted is null ? sorted : Ints(rowOfSorted, nameof(rowOfSorted));
            _scatterLayout(n, sorted, Floats(entryScores, nameof(entryScores)), map, rowOfSorted is null ? 0 : 1,
                realTokens * topK, topK, token, score, rowOfEntry);
        }
        if (realTokens > 0 && topK > 0) _sortPositions(realTokens, rowOfEntry, topK, positions);
    }

    /// <inheritdoc />
    public void GatherRows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination)
    {
        int d = destination.RowLength, total = rowOf.ElementCount * d;
        if (total == 0) return;
        if (destination.DType == DType.BFloat16)
        {
            GatherBFloat16Rows(source, sourceRowOffset, rowOf, scale, destination, d, total);
            return;
        }
        ArrayView<float> dst = Floats(destination, nameof(destination));
        if (d % 4 == 0)
        {
            // Rows of a multiple of 4 floats start on 16-byte boundaries (buffers are 256-byte aligned): move quads.
            ArrayView<float> src = Floats(source, nameof(source));
            _gatherRows4(total / 4, src.Cast<Float4>(), sourceRowOffset, Ints(rowOf, nameof(rowOf)),
                scale is null ? dst : Floats(scale, nameof(scale)), scale is null ? 0 : 1, d / 4, dst.Cast<Float4>());
            return;
        }
        _gatherRows(total, Floats(source, nameof(source)), sourceRowOffset, Ints(rowOf, nameof(rowOf)),
            scale is null ? dst : Floats(scale, nameof(scale)), scale is null ? 0 : 1, d, dst);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Rows of a multiple of 128 words (128 float32 or 256 bfloat16 values) go token by token, each token row read once
    /// (<see cref="TokenScatterKernelBodies"/>); other widths are computed as the gather.
    /// </remarks>
    public void ScatterTokenRows(Tensor source, int sourceRowOffset, TokenScatter map, Tensor destination)
    {
        (Tensor rowToken, Tensor entryRow, int topK, Tensor? scale) = map;
        int elementsPerWord = destination.DType == DType.BFloat16 ? 2 : 1;
        int d = destination.RowLength, words = d / elementsPerWord;
        if (d % (elementsPerWord * BFloat16KernelBodies.TileWords) != 0 || destination.DType != source.DType)
        {
            GatherRows(source, sourceRowOffset, rowToken, scale, destination);
            return;
        }
        int rows = rowToken.ElementCount, tokens = entryRow.ElementCount / Math.Max(1, topK);
        ArrayView<uint> to = Words(destination, nameof(destination));
        ArrayView<int> tokenOf = Ints(rowToken, nameof(rowToken));
        // Rows no token lands in exist only when there are more rows than (token, slot) entries.
        if (rows > tokens * topK && rows > 0) _clearTokenlessRowsTiled(rows * (words / 4), tokenOf, words, to);
        if (tokens == 0 || topK == 0) return;
        ArrayView<int> rowOfEntry = Ints(entryRow, nameof(entryRow));
        _scatterTokensTiled(tokens * (words / 4), Words(source, nameof(source)), sourceRowOffset, rowOfEntry, topK,
            scale is null ? rowOfEntry.Cast<float>() : Floats(scale, nameof(scale)), scale is null ? 0 : 1, elementsPerWord - 1, words, to);
    }

    /// <summary>A float32 or bfloat16 tensor as 32-bit words (one float32, or two bfloat16 values, per word).</summary>
    private ArrayView<uint> Words(Tensor t, string name)
    {
        IlgpuDeviceBuffer buffer = Buffer(t, name);
        if (t.DType is not (DType.Float32 or DType.BFloat16)) throw new ArgumentException($"{name} must be float32 or bfloat16; got {t}", name);
        return buffer.View<uint>(t.ByteCount / sizeof(uint));
    }

    /// <summary>The kernel over its parameters spread out (the seam passes them as a record).</summary>
    private void GatherReduceCore(Tensor rows, Tensor positions, Tensor? scale, Tensor? initial, Tensor destination, int destinationOffset)
    {
        int d = destination.RowLength, tokens = positions.Rows, k = positions.RowLength, total = tokens * d;
        if (total == 0) return;
        if (destination.DType == DType.BFloat16)
        {
            GatherReduceBFloat16(rows, positions, scale, initial, destination, destinationOffset, d, k, total);
            return;
        }
        ArrayView<float> dst = Floats(destination, nameof(destination));
        _gatherReduce(total, Floats(rows, nameof(rows)), Ints(positions, nameof(positions)), k,
            scale is null ? dst : Floats(scale, nameof(scale)), scale is null ? 0 : 1,
            initial is null ? dst : Floats(initial, nameof(initial)), initial is null ? 0 : 1,
            d, dst, destinationOffset);
    }

    /// <summary>The kernel over its parameters spread out (the seam passes them as a record).</summary>
    private void RowDotsCore(Tensor a, Tensor aRow, Tensor b, int bRowOffset, int entriesPerBRow, Tensor result, int resultOffset)
    {
        int m = aRow.ElementCount;
        if (m == 0) return;
        if (a.DType == DType.BFloat16)
        {
            _rowDotsBf16(m, Halves(a, nameof(a)), Ints(aRow, nameof(aRow)), Halves(b, nameof(b)), bRowOffset, entriesPerBRow, a.RowLength,
                Floats(result, nameof(result)), resultOffset);
            return;
        }
        _rowDots(m, Floats(a, nameof(a)), Ints(aRow, nameof(aRow)), Floats(b, nameof(b)), bRowOffset, entriesPerBRow, a.RowLength,
            Floats(result, nameof(result)), resultOffset);
    }

    private void GatherBFloat16Rows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination, int d, int total)
    {
        ArrayView<ushort> dst = Halves(destination, nameof(destination));
        ArrayView<ushort> src = Halves(source, nameof(source));
        ArrayView<int> map = Ints(rowOf, nameof(rowOf));
        ArrayView<float> scales = scale is null ? map.Cast<float>() : Floats(scale, nameof(scale));
        if (d % (2 * BFloat16KernelBodies.TileWords) == 0)
        {
            _gatherBf16Tiled(total / 8, src.Cast<uint>(), sourceRowOffset, map, scales, scale is null ? 0 : 1, d / 2, dst.Cast<uint>());
            return;
        }
        if (d % 8 == 0)
        {
            // Rows of a multiple of 8 values start on 16-byte boundaries (buffers are 256-byte aligned): move packs of 8.
            _gatherBf16x8(total / 8, src.Cast<UInt4>(), sourceRowOffset, map, scales, scale is null ? 0 : 1, d / 8, dst.Cast<UInt4>());
            return;
        }
        _gatherBf16(total, src, sourceRowOffset, map, scales, scale is null ? 0 : 1, d, dst);
    }

    private void GatherReduceBFloat16(Tensor rows, Tensor positions, Tensor? scale, Tensor? initial, Tensor destination, int destinationOffset,
        int d, int k, int total)
    {
        ArrayView<ushort> dst = Halves(destination, nameof(destination));
        ArrayView<ushort> src = Halves(rows, nameof(rows));
        ArrayView<int> slots = Ints(positions, nameof(positions));
        ArrayView<float> scales = scale is null ? slots.Cast<float>() : Floats(scale, nameof(scale));
        ArrayView<ushort> init = initial is null ? dst : Halves(initial, nameof(initial));
        if (d % (2 * BFloat16KernelBodies.TileWords) == 0)
        {
            _gatherReduceBf16Tiled(total / 8, src.Cast<uint>(), slots, k, scales, scale is null ? 0 : 1, init.Cast<uint>(), initial is null ? 0 : 1,
                d / 2, dst.Cast<uint>(), destinationOffset);
            return;
        }
        if (d % 8 == 0)
        {
            _gatherReduceBf16x8(total / 8, src.Cast<UInt4>(), slots, k, scales, scale is null ? 0 : 1, init.Cast<UInt4>(), initial is null ? 0 : 1,
                d / 8, dst.Cast<UInt4>(), destinationOffset);
            return;
        }
        _gatherReduceBf16(total, src, slots, k, scales, scale is null ? 0 : 1, init, initial is null ? 0 : 1, d, dst, destinationOffset);
    }


    /// <summary>Frees the scratch memory, and the allocator when this instance created it.</summary>
    public void Dispose()
    {
        _scanScratch?.Dispose();
        _scanScratch = null;
        if (_ownsAllocator) _allocator.Dispose();
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
        if (tensor.DeviceBuffer is IlgpuDeviceBuffer buffer && buffer.Accelerator == _accelerator) return buffer;
        throw new ArgumentException($"{name} ({tensor}) lives on {tensor.Device}, not on this backend's {Device.Name}: copy it with ToDevice", name);
    }

    private ArrayView<float> Floats(Tensor t, string name) => Typed<float>(t, DType.Float32, name);

    private ArrayView<int> Ints(Tensor t, string name) => Typed<int>(t, DType.Int32, name);

    /// <summary>A bfloat16 tensor as its raw 16-bit patterns.</summary>
    private ArrayView<ushort> Halves(Tensor t, string name) => Typed<ushort>(t, DType.BFloat16, name);

    private ArrayView<long> Longs(Tensor t, string name) => Typed<long>(t, DType.Int64, name);

    private ArrayView<T> Typed<T>(Tensor t, DType dtype, string name) where T : unmanaged
    {
        IlgpuDeviceBuffer buffer = Buffer(t, name);
        if (t.DType != dtype) throw new ArgumentException($"{name} must be {dtype}; got {t}", name);
        return buffer.View<T>(t.ElementCount);
    }
}
