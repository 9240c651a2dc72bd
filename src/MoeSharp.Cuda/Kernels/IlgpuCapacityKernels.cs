using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Compute;
using MoeSharp.Cuda.Memory;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using static MoeSharp.Cuda.Kernels.CapacityKernelBodies;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Capacity mode's kernels (<see cref="ICapacityKernels"/>) on an ILGPU accelerator: no copy to or from the host, so
/// a capacity-mode dispatch without overflow queues only kernels and exchanges on the stream. The results are the
/// host loops' (<see cref="HostCapacityKernels"/>) exactly. The stable sort reuses the normal mode's chunk-ranked
/// kernels, with the expert starts computed on the device.
/// </summary>
internal sealed class IlgpuCapacityKernels : ICapacityKernels
{
    private readonly Accelerator _accelerator;
    private readonly IlgpuTensorAllocator _allocator;
    private readonly int _rankChunk;
    private readonly Action<Index1D, ArrayView<int>> _init;
    private readonly Action<
        Index1D,
        ArrayView<int>,
        ArrayView<float>,
        int,
        int,
        int,
        ArrayView<int>,
        ArrayView<float>,
        ArrayView<int>,
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
        ArrayView<int>,
        ArrayView<int>
    > _scan64;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<float>, int, ArrayView<int>> _fetch32;
    private readonly Action<Index1D, ArrayView<long>, ArrayView<float>, int, ArrayView<int>> _fetch64;
    private readonly Action<Index1D, ArrayView<int>, int, ArrayView<int>> _starts;
    private readonly Action<KernelConfig, ArrayView<int>, int, int, ArrayView<int>, ArrayView<int>> _chunkRanks;
    private readonly Action<Index1D, ArrayView<int>, int, int, ArrayView<int>> _columnScan;
    private readonly Action<
        Index1D,
        ArrayView<int>,
        ArrayView<int>,
        int,
        int,
        ArrayView<int>,
        ArrayView<int>
    > _placeRanked;
    private readonly Action<Index1D, ArrayView<int>, int, int, int, int, ArrayView<int>> _localRows;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int, int, int, ArrayView<int>> _pack;
    private readonly Action<Index1D, ArrayView<int>, int, int, int, ArrayView<int>> _read;
    private readonly Action<Index1D, ArrayView<int>, int, int, int, ArrayView<int>> _receivedRows;
    private readonly Action<Index1D, ArrayView<int>, int, int, int, int, ArrayView<int>, ArrayView<int>> _receiveMap;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>> _remap;
    private readonly Action<Index1D, ArrayView<int>, int, ArrayView<int>> _aligned;

    /// <summary>Compiles the kernels for <paramref name="allocator"/>'s accelerator.</summary>
    /// <param name="allocator">Where the scratch tensors come from.</param>
    public IlgpuCapacityKernels(IlgpuTensorAllocator allocator)
    {
        _allocator = allocator;
        _accelerator = allocator.Accelerator;
        Accelerator a = _accelerator;
        _rankChunk = Math.Min(DispatchKernelBodies.MaxRankChunk, a.MaxNumThreadsPerGroup);
        _init = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>>(DispatchKernelBodies.InitScan);
        _scan32 = a.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<int>,
            ArrayView<float>,
            int,
            int,
            int,
            ArrayView<int>,
            ArrayView<float>,
            ArrayView<int>,
            ArrayView<int>
        >(Scan32);
        _scan64 = a.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<long>,
            ArrayView<float>,
            int,
            int,
            int,
            ArrayView<int>,
            ArrayView<float>,
            ArrayView<int>,
            ArrayView<int>
        >(Scan64);
        _fetch32 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>, int, ArrayView<int>>(
            DispatchKernelBodies.FetchInvalid32
        );
        _fetch64 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<float>, int, ArrayView<int>>(
            DispatchKernelBodies.FetchInvalid64
        );
        _starts = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, ArrayView<int>>(ExpertStarts);
        _chunkRanks = a.LoadStreamKernel<ArrayView<int>, int, int, ArrayView<int>, ArrayView<int>>(
            DispatchKernelBodies.ChunkRanks
        );
        _columnScan = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, int, ArrayView<int>>(
            DispatchKernelBodies.ColumnScan
        );
        _placeRanked = a.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<int>,
            ArrayView<int>,
            int,
            int,
            ArrayView<int>,
            ArrayView<int>
        >(DispatchKernelBodies.PlaceRanked);
        _localRows = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, int, int, int, ArrayView<int>>(
            CapacityKernelBodies.LocalRows
        );
        _pack = a.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<int>,
            ArrayView<int>,
            int,
            int,
            int,
            int,
            ArrayView<int>
        >(CapacityKernelBodies.PackMessages);
        _read = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, int, int, ArrayView<int>>(
            CapacityKernelBodies.ReadMessages
        );
        _receivedRows = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, int, int, ArrayView<int>>(
            ReceivedExpertRows
        );
        _receiveMap = a.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<int>,
            int,
            int,
            int,
            int,
            ArrayView<int>,
            ArrayView<int>
        >(ReceiveMap);
        _remap = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>>(
            CapacityKernelBodies.RemapPositions
        );
        _aligned = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, ArrayView<int>>(
            CapacityKernelBodies.AlignedExpertRows
        );
    }

    private AcceleratorStream Stream => _accelerator.DefaultStream;

    /// <inheritdoc />
    public void Scan(ShardEntries shard, EntryColumns entries, Tensor counts, Tensor status)
    {
        (Tensor topScores, Tensor expertIds, int rowOffset, int realTokens, _, int numExperts) = shard;
        int k = topScores.RowLength,
            real = realTokens * k,
            n = entries.Ids.ElementCount,
            offset = rowOffset * k;
        ArrayView<int> statusView = Ints(status);
        ArrayView<int> countView = Ints(counts);
        _init(statusView.IntExtent, statusView);
        if (countView.Length > 0)
            countView.MemSetToZero(Stream);
        ArrayView<float> scores = Floats(topScores);
        if (expertIds.DType == DType.Int64)
        {
            ArrayView<long> ids = View<long>(expertIds, DType.Int64);
            if (n > 0)
                _scan64(
                    n,
                    ids,
                    scores,
                    offset,
                    real,
                    numExperts,
                    Ints(entries.Ids),
                    Floats(entries.Scores),
                    countView,
                    statusView
                );
            _fetch64(1, ids, scores, offset, statusView);
        }
        else
        {
            ArrayView<int> ids = Ints(expertIds);
            if (n > 0)
                _scan32(
                    n,
                    ids,
                    scores,
                    offset,
                    real,
                    numExperts,
                    Ints(entries.Ids),
                    Floats(entries.Scores),
                    countView,
                    statusView
                );
            _fetch32(1, ids, scores, offset, statusView);
        }
    }

    /// <inheritdoc />
    public void SortByExpert(Tensor expertIds, Tensor counts, Tensor order)
    {
        int n = expertIds.ElementCount,
            experts = counts.ElementCount;
        if (n == 0)
            return;
        int chunk = _rankChunk,
            chunks = (int)((n + (long)chunk - 1) / chunk);
        using var scope = new TensorScope(_allocator);
        Tensor starts = scope.Rent(DType.Int32, experts);
        Tensor table = scope.Rent(DType.Int32, chunks * experts);
        Tensor rank = scope.Rent(DType.Int32, n);
        ArrayView<int> ids = Ints(expertIds),
            tableView = Ints(table),
            rankView = Ints(rank);
        _starts(1, Ints(counts), experts, Ints(starts));
        tableView.MemSetToZero(Stream);
        _chunkRanks(new KernelConfig(chunks, chunk), ids, n, experts, tableView, rankView);
        _columnScan(experts, tableView, chunks, experts, Ints(starts));
        _placeRanked(n, ids, rankView, chunk, experts, tableView, Ints(order));
        // No wait: the scratch goes back to the pool at once, and its next user queues after these kernels.
    }

    /// <inheritdoc />
    public void LocalRows(Tensor counts, CapacityShape shape, Tensor rowOfSorted)
    {
        int n = rowOfSorted.ElementCount;
        if (n > 0)
        {
            _localRows(
                n,
                Ints(counts),
                shape.Ranks,
                shape.LocalExperts,
                shape.RowsPerPeer,
                shape.Alignment,
                Ints(rowOfSorted)
            );
        }
    }

    /// <inheritdoc />
    public void PackMessages(Tensor counts, Tensor status, CapacityShape shape, Tensor send) =>
        _pack(
            shape.Ranks,
            Ints(counts),
            Ints(status),
            shape.Ranks,
            shape.LocalExperts,
            shape.RowsPerPeer,
            shape.Tokens,
            Ints(send)
        );

    /// <inheritdoc />
    public void ReadMessages(Tensor received, CapacityShape shape, Tensor status) =>
        _read(1, Ints(received), shape.Ranks, shape.LocalExperts, shape.SpSize, Ints(status));

    /// <inheritdoc />
    public void ReceivePermutation(
        Tensor received,
        CapacityShape shape,
        Tensor expertMajorRowOf,
        Tensor rankMajorRowOf,
        Tensor tokensPerLocalExpert
    )
    {
        ArrayView<int> messages = Ints(received);
        if (tokensPerLocalExpert.ElementCount > 0)
        {
            _receivedRows(
                shape.LocalExperts,
                messages,
                shape.Ranks,
                shape.LocalExperts,
                shape.Alignment,
                Ints(tokensPerLocalExpert)
            );
        }
        // Rows no received row maps to (padding, the unused tail) read -1: all bytes 0xFF.
        if (expertMajorRowOf.ByteCount > 0)
            Buffer(expertMajorRowOf).Bytes.SubView(0, expertMajorRowOf.ByteCount).MemSet(Stream, 0xFF);
        int rows = rankMajorRowOf.ElementCount;
        if (rows > 0)
        {
            _receiveMap(
                rows,
                messages,
                shape.Ranks,
                shape.LocalExperts,
                shape.RowsPerPeer,
                shape.Alignment,
                Ints(expertMajorRowOf),
                Ints(rankMajorRowOf)
            );
        }
    }

    /// <inheritdoc />
    public void RemapPositions(Tensor positions, Tensor rowOfSorted)
    {
        if (positions.ElementCount > 0)
            _remap(positions.ElementCount, Ints(positions), Ints(rowOfSorted));
    }

    /// <inheritdoc />
    public void AlignedExpertRows(Tensor counts, int alignment, Tensor tokensPerExpert)
    {
        if (tokensPerExpert.ElementCount > 0)
            _aligned(tokensPerExpert.ElementCount, Ints(counts), alignment, Ints(tokensPerExpert));
    }

    private IlgpuDeviceBuffer Buffer(Tensor tensor) =>
        tensor.DeviceBuffer is IlgpuDeviceBuffer buffer && buffer.Accelerator == _accelerator
            ? buffer
            : throw new ArgumentException(
                $"{tensor} lives on {tensor.Device}, not on this accelerator: copy it with ToDevice",
                nameof(tensor)
            );

    private ArrayView<int> Ints(Tensor tensor) => View<int>(tensor, DType.Int32);

    private ArrayView<float> Floats(Tensor tensor) => View<float>(tensor, DType.Float32);

    private ArrayView<T> View<T>(Tensor tensor, DType dtype)
        where T : unmanaged
    {
        IlgpuDeviceBuffer buffer = Buffer(tensor);
        if (tensor.DType != dtype)
            throw new ArgumentException($"{tensor} must be {dtype}", nameof(tensor));
        return buffer.View<T>(tensor.ElementCount);
    }
}
